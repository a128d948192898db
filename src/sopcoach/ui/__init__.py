"""Widgets and app builders. Widgets display state and forward clicks; the rules live in the library.

This is the only package of sopcoach that imports ipywidgets.
"""
from .exam_app import ExamApp, exam_app

__all__ = ["ExamApp", "exam_app"]
