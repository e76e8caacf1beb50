"""``lakeline ui``: the lake in a browser — runs, tables, lineage, quality and workflows.

A small Starlette app rendered on the server with Jinja2 templates (:mod:`lakeline.ui.app`);
JavaScript only where drawing needs it (cytoscape for graphs, Chart.js for charts, vendored in
``static/vendor`` so pages work offline). Every request needs the access token the server prints
(:mod:`lakeline.ui.auth`); actions are CSRF-checked POSTs. The same page functions render the
static export (:mod:`lakeline.ui.export`). Needs the ``ui`` extra: ``pip install 'lakeline[ui]'``.
"""
