"""Badge icons: the built-in SVG library shipped in the package, and uploaded images."""
