"""Fonts shipped as package data (DejaVu Sans Bold, Bitstream Vera licence: LICENSE-DejaVu.txt)."""
