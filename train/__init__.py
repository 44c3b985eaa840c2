"""Training, export and evaluation of lic models (see README.md beside this file)."""
