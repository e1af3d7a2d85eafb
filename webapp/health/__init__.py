"""Asset health (DESIGN.md §15): the explainable ISO 20816-3 score, its rules in `model`."""
