"""The pages of ``lakeline ui``: one module per area, each registering its pages and actions
with :func:`lakeline.ui.render.page` and :func:`lakeline.ui.render.action`.

A page is a function ``(view, **params) -> (template, context)``: the server calls it for a GET
(params from the query string) and the static export calls it with the params it chooses, so
every page renders the same way in both. Actions are POSTs (server only).
"""

#: the modules whose import registers the pages, in the order of the navigation bar
MODULES = ("overview", "runs", "tables", "lineage", "quality", "workflows")
