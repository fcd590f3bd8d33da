"""Speed: what each start-up does before the first iteration stays cheap (issue 14, start-up target).

Counts and structure, not wall clock (the machine's load moves that): see benchmarks/README.md,
"Start-up", for the profile these checks come from.
"""

from __future__ import annotations

from typedrunner.app.help import help_node


def test_help_template_is_not_an_interpolation_omegaconf_would_lex_at_every_merge() -> None:
    # OmegaConf parses a string holding "${" with its ANTLR lexer, character by character, each time
    # Hydra merges the config (16 times per start-up): the 27,000-character --help template cost 0.3 s
    node = help_node()
    assert len(node["template"]) > 10_000  # the schema's help is in it
    assert "${" not in node["template"]
    assert node["header"].replace("$", "$$") in node["template"]
    assert node["footer"].replace("$", "$$") in node["template"]
