"""reports: the static report of a weight-decay study, built from exported files only.

``python -m reports.build RUN_DIR [--benchmarks DIR]`` (or ``reports.build.build_report``) reads
the tables and ``run.json`` a study exported (``docs/outputs.md``) and pytest-benchmark JSON, and
writes ``RUN_DIR/report/``: ``index.html``, ``summary.md`` and seaborn figures as PNG. This is the
only package that plots; it never opens a database and never needs torch.
"""
