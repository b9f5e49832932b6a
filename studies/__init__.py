"""studies: the Optuna study driver (``python -m studies.search``) and its scale-out."""
