"""The exception tree (:mod:`sopcoach.errors`): one module, one root."""
from __future__ import annotations

import importlib
import pkgutil

import sopcoach
from sopcoach import errors


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_every_sopcoach_error_is_defined_in_errors():
    """Each error sopcoach raises on purpose is a SopcoachError defined in sopcoach.errors, none elsewhere."""
    for module in pkgutil.walk_packages(sopcoach.__path__, "sopcoach."):
        importlib.import_module(module.name)
    homes = {cls.__qualname__: cls.__module__ for cls in _subclasses(errors.SopcoachError)}
    assert {name: home for name, home in homes.items() if home != "sopcoach.errors"} == {}
    assert len(homes) >= 25


def test_exceptions_defined_in_sopcoach_derive_from_the_root():
    """No module of sopcoach defines an exception class outside the SopcoachError tree."""
    for module in pkgutil.walk_packages(sopcoach.__path__, "sopcoach."):
        importlib.import_module(module.name)
    strays = [f"{cls.__module__}.{cls.__qualname__}" for cls in _subclasses(Exception)
              if cls.__module__.startswith("sopcoach") and not issubclass(cls, errors.SopcoachError)]
    assert strays == []
