"""Widgets and app builders. Widgets display state and forward clicks; the rules live in the library.

This is the only package of sopcoach that imports ipywidgets.
"""
from .exam_app import ExamApp, exam_app
from .home_app import HomeApp, home_app
from .lesson_app import LessonApp, lesson_app

__all__ = ["ExamApp", "HomeApp", "LessonApp", "exam_app", "home_app", "lesson_app"]
