from django.apps import AppConfig


class VertiflowConfig(AppConfig):
    name = "vertiflow.integration.django_app"
    label = "vertiflow"
    verbose_name = "VertiFlow models"
