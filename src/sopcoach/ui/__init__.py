"""Widgets and app builders. Widgets display state and forward clicks; the rules live in the library.

This is the only package of sopcoach that imports ipywidgets.
"""
from .app import LearnerApp, learner_app
from .exam_app import ExamApp
from .home_app import HomeApp
from .lesson_app import LessonApp

__all__ = ["ExamApp", "HomeApp", "LearnerApp", "LessonApp", "learner_app"]
