"""Linear algebra behind the learners: ridge paths from streamed Gram matrices
(``linalg.ridge``), dense kernel solves (``linalg.dense``) and Falkon (``linalg.falkon``).
Nothing here knows about networks or data streams."""
