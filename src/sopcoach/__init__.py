"""sopcoach: teach, examine and audit a company's sales SOP.

One package per concern: :mod:`sopcoach.content` (the playbook, the question banks and the blueprint
as validated models), :mod:`sopcoach.lessons`, :mod:`sopcoach.certification` (the exam attempt state
machine, exact scoring, certificates), :mod:`sopcoach.authoring`, :mod:`sopcoach.records` (the
database), :mod:`sopcoach.crm` and :mod:`sopcoach.analytics` (CRM exports against the SOP),
:mod:`sopcoach.interchange`, :mod:`sopcoach.web` and :mod:`sopcoach.cli`. Widgets live in
:mod:`sopcoach.ui` only.
"""

__version__ = "0.1.0"
