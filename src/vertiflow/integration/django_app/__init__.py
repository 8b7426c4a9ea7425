"""A reusable Django app: the detector (image upload) and the Oracle (JSON) over HTTP.

Install the extra (`pip install "vertiflow[django]"`), then in the site's settings:

    INSTALLED_APPS = [..., "vertiflow.integration.django_app"]
    VERTIFLOW = {                      # all optional
        "MODELS_DIR": "models",        # the pipeline's outputs (when not from the registry)
        "USE_REGISTRY": None,          # True: champions of the MLflow registry; None: only
                                       # when MLFLOW_TRACKING_URI is set
        "MONITORING_DIR": ".monitoring",
        "CONF": 0.25,                  # the detector's confidence threshold
        "MAX_UPLOAD_BYTES": 10 * 2**20,
    }

and in its URLconf: `path("ml/", include("vertiflow.integration.django_app.urls"))`.
Endpoints: `POST detect/` (multipart, field `image`; optional `conf`), `POST oracle/`
(JSON: one row or {"rows": [...]}), `GET health/`. Every prediction is logged with its
inputs for drift monitoring (`vertiflow monitor --from-log yolo|oracle`) and its latency
in `.monitoring/performance_metrics.json`; a bad request is a 400 naming the problem and
logs nothing; a model failure is a 500 (503 when the model cannot be loaded) and an alert
in `.monitoring/alerts/`. POSTs go through the site's CSRF middleware like any view.
"""
