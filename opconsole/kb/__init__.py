"""The knowledge base: Markdown articles (articles), stemmed words (text), the index in the store (index).

Pure Python, no UI: the console's lookup pane and the CLI are built on these.
"""
