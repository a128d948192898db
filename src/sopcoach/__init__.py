"""sopcoach: teach, examine and audit a company's sales SOP.

The library holds the SOP as a validated model (:mod:`sopcoach.content.playbook`), the question banks
(:mod:`sopcoach.content.quizbank`), exact scoring (:mod:`sopcoach.certification.scoring`), the exam attempt state machine
(:mod:`sopcoach.certification.exam`) and the records database (:mod:`sopcoach.records`). Widgets live in
:mod:`sopcoach.ui` only.
"""

__version__ = "0.1.0"
