"""The rule files users edit (shipped in `shipped/`, shown as `rules/` in a checkout): one loader per file."""
