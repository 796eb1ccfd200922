"""Sphinx configuration of the lawrob documentation: ``uv run sphinx-build -W -b html docs lawrob-out/docs``.

The pages are MyST Markdown (myst-nb reads them and the notebooks, which are rendered as committed, never
executed); the API pages come from the docstrings (autodoc, napoleon) and the CLI page from the argparse parser
(sphinx-argparse). Nothing is downloaded: no intersphinx, no remote images.
"""

import lawrob

project = "lawrob"
author = "lawrob developers"
copyright = "lawrob developers"
release = lawrob.__version__
version = release

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinxarg.ext",
]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb"}

myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
nb_execution_mode = "off"  # the notebooks are run by tests/test_notebooks.py, not by the docs build

autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": False}
autodoc_typehints = "description"
napoleon_google_docstring = True
napoleon_numpy_docstring = True


def _escape_bars(line: str) -> str:
    """``|`` outside double-backquoted literals, as ``\\|``: the docstrings write absolute values and norms as
    plain text (|x|, ||w||), which reStructuredText would read as substitution references."""
    parts = line.split("``")
    return "``".join(part if i % 2 else part.replace("|", "\\|") for i, part in enumerate(parts))


def _plain_text_math(app, what, name, obj, options, lines) -> None:
    lines[:] = [_escape_bars(line) for line in lines]


def setup(app):
    app.connect("autodoc-process-docstring", _plain_text_math)


html_theme = "alabaster"
html_title = f"lawrob {release}"
html_static_path = []
