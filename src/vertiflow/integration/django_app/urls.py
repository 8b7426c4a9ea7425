from django.urls import path

from vertiflow.integration.django_app import views

app_name = "vertiflow"
urlpatterns = [
    path("detect/", views.detect, name="detect"),
    path("oracle/", views.oracle, name="oracle"),
    path("health/", views.health, name="health"),
]
