"""The site's home page, at the root and named "home" without a namespace (login redirects
there, every page links to it). It lives here because what it shows an annotator is
annotation's: the campaigns open to them and their progress in each."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
]
