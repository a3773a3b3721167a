"""Data-subject rights and the suppression list: access export, erasure, retention, contacts."""
