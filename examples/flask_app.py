"""The cancer classifier behind Flask, monitored by wrapping the WSGI app in `instrument.WSGIMiddleware`.

    .venv/bin/python -m examples.flask_app --port 8001 [--collector http://127.0.0.1:4318]

Same API as `examples.fastapi_app` (POST /predict {"instances": [...]} -> {"predictions": [...]}, ids in
`x-prediction-id`), served by werkzeug's threaded server. Ctrl-C or SIGTERM stops it.
"""

from __future__ import annotations

import signal
from typing import Any

from flask import Flask, jsonify, request
from werkzeug.serving import make_server

import instrument
from examples.cancer import MODEL, TASK, VERSION, Cancer, train
from examples.serving import announce, listen, parse_args, setup


def create_app(cancer: Cancer) -> Flask:
    app = Flask("cancer")

    @app.post("/predict")
    def predict() -> Any:
        body = request.get_json(silent=True)
        rows = body.get("instances") if isinstance(body, dict) else None
        if not isinstance(rows, list) or not rows:
            return jsonify(error='expected {"instances": [row, ...]} with rows of the 30 features'), 422
        try:
            return jsonify(predictions=cancer.scores(rows))
        except (ValueError, TypeError, KeyError) as exc:
            return jsonify(error=f"bad rows: {exc}"), 422

    @app.get("/healthz")
    def healthz() -> Any:
        return jsonify(status="ok")

    app.wsgi_app = instrument.WSGIMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, model=MODEL, version=VERSION, task=TASK, features=cancer.features
    )
    return app


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    args = parse_args("Serve the cancer classifier with Flask, monitored by predwatch.")
    setup("cancer-flask", args.collector)
    sock = listen(args.host, args.port)
    sock.listen(128)
    host, port = sock.getsockname()[:2]
    server = make_server(host, port, create_app(train()), threaded=True, fd=sock.fileno())
    sock.close()  # the server holds its own duplicate of the descriptor
    announce("flask", server.socket)
    signal.signal(signal.SIGTERM, _stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        instrument.shutdown()


if __name__ == "__main__":
    main()
