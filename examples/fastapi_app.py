"""The cancer classifier behind FastAPI, monitored by one line: `app.add_middleware(instrument.ASGIMiddleware, ...)`.

    .venv/bin/python -m examples.fastapi_app --port 8000 [--collector http://127.0.0.1:4318]
    curl -s localhost:8000/predict -H 'content-type: application/json' \
         -d '{"instances": [{"mean radius": 14.1, "mean texture": 19.3, ...}]}'

POST /predict takes {"instances": [...]} with rows of the 30 features, as dicts (named) or lists (in the data
set's order), and answers {"predictions": [probability of benign, ...]}; the prediction ids come back in the
`x-prediction-id` header (comma-separated), for posting the true labels later.
"""

from __future__ import annotations

from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException

import instrument
from examples.cancer import MODEL, TASK, VERSION, Cancer, train
from examples.serving import announce, listen, parse_args, setup


def create_app(cancer: Cancer) -> FastAPI:
    app = FastAPI(title="cancer classifier")

    @app.post("/predict")
    def predict(body: dict[str, Any]) -> dict[str, list[float]]:
        rows = body.get("instances")
        if not isinstance(rows, list) or not rows:
            raise HTTPException(422, 'expected {"instances": [row, ...]} with rows of the 30 features')
        try:
            return {"predictions": cancer.scores(rows)}
        except (ValueError, TypeError, KeyError) as exc:
            raise HTTPException(422, f"bad rows: {exc}") from exc

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.add_middleware(
        instrument.ASGIMiddleware,  # type: ignore[arg-type]  # mypy vs Starlette's middleware factory protocol
        model=MODEL,
        version=VERSION,
        task=TASK,
        features=cancer.features,
    )
    return app


def main() -> None:
    args = parse_args("Serve the cancer classifier with FastAPI, monitored by predwatch.")
    setup("cancer-fastapi", args.collector)
    sock = listen(args.host, args.port)
    app = create_app(train())
    announce("fastapi", sock)
    config = uvicorn.Config(app, log_level="warning", ws="none", server_header=False)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
