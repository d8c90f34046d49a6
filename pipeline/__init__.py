"""mdr: MacroData Refinement pipeline (RefinedWeb-style) on Spark and Ray."""
__version__ = "0.1.0"
