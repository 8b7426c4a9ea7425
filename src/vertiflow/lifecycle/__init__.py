"""Around the models: MLflow tracking, the registry, serving, the apps, reports."""
