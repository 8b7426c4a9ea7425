"""Integrations of the pipeline's models into applications (Django: `django_app`)."""
