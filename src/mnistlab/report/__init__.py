"""Figures (arrays → matplotlib figures) and the HTML report."""
