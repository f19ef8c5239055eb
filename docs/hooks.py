"""Build-time pages of the docs site (an mkdocs hook, named in ``mkdocs.yml``).

* ``results/index.md`` and ``research/index.md`` list every other page of their folder,
  and the nav's "Results" and "Research notes" sections list the same pages, so a page
  added there appears on the site without an edit here.
* ``environments/<name>.md`` is written from the environment module's docstring
  (agents, actions, observations, rewards, options, version history), the spaces of
  environments built here, and the argument table read from the constructor's
  signature and docstring, so the page and the code cannot drift.
* ``<!-- hmarl-help -->`` in ``cli.md`` becomes the ``--help`` of every ``hmarl``
  command, printed by the parsers themselves.

The functions that make the pages take no mkdocs objects, so the tests call them directly.
The generated pages are also committed, so the links to them from README.md work when
read in the repository: ``python docs/hooks.py`` writes them, and a test fails when the
committed copies differ from what this file generates.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import io
import os
import re
import warnings
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent

#: Folders whose pages are listed by a generated index page and nav section, with the
#: nav title of the section and the index page's heading and introduction.
LISTED_FOLDERS = {
    "results": (
        "Results",
        "What was measured, with the command that measured it. Each page holds one "
        "question: the tables beside the published numbers where there are any, and the "
        "plots made from the run logs.",
    ),
    "research": (
        "Research notes",
        "Investigations, negative results among them, each in one place: what was tried, "
        "what was measured and what was concluded.",
    ),
}
#: The longest summary of a page on an index page.
SUMMARY_CHARS = 200
#: Pages listed first in their folder, in this order; the rest follow by file name.
LEADING_PAGES = ("reproduction.md", "benchmarks.md")

#: Environment pages: page name -> (current module, older modules, picture, spaces shown
#: for these keyword arguments).
ENVIRONMENT_PAGES: dict[str, tuple[str, tuple[str, ...], str, list[dict[str, Any]]]] = {
    "trash_collection": (
        "trash_collection_v0",
        (),
        "../img/trash_collection.gif",
        [
            {"layout": "room"},
            {"layout": "ring"},
            {"layout": "coordination"},
            {"layout": "random"},
            {"layout": "ring", "view": "egocentric", "view_size": 5},
        ],
    ),
    "basketball_defense": (
        "basketball_defense_v1",
        ("basketball_defense_v0",),
        "../img/basketball_defense.gif",
        [{"n_players": 1}, {"n_players": 3}, {"n_players": 5}, {"n_players": 3, "view": "matched"}],
    ),
}

HELP_MARKER = "<!-- hmarl-help -->"
#: The width the ``--help`` texts are wrapped to on the CLI page, whatever the terminal.
HELP_COLUMNS = 100


# --- reST-flavoured docstrings to Markdown ----------------------------------------------


def rst_to_markdown(text: str) -> str:
    """The docstring markup used in ``hmarl`` as Markdown: double backquotes and
    ``:mod:``/``:class:`` roles become code, ``>>>`` examples a Python block (a bare
    ``>>>`` is a blank line in it)."""
    text = re.sub(r":(?:mod|class|func|meth|attr):`~?([^`]+)`", r"`\1`", text)
    text = re.sub(r"``([^`]+)``", r"`\1`", text)
    out: list[str] = []
    in_example = False
    for line in text.splitlines():
        if line.startswith((">>> ", "... ")) or line in (">>>", "..."):
            if not in_example:
                out.append("```python")
                in_example = True
            out.append(line[4:])
            continue
        if in_example:
            out.append("```")
            in_example = False
        out.append(line)
    if in_example:
        out.append("```")
    return "\n".join(out)


def docstring_sections(doc: str) -> dict[str, str]:
    """A docstring's sections by title (a line underlined with ``-``); the text before
    the first title is under ``""``."""
    doc = inspect.cleandoc(doc)
    sections: dict[str, list[str]] = {"": []}
    current = ""
    lines = doc.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if i + 1 < len(lines) and line.strip() and re.fullmatch(r"-{3,}", lines[i + 1].strip()):
            current = line.strip()
            sections[current] = []
            i += 2
            continue
        sections[current].append(line)
        i += 1
    return {title: "\n".join(body).strip() for title, body in sections.items()}


def argument_docs(doc: str) -> dict[str, str]:
    """The ``Arguments`` section of a docstring (``name`` lines, each followed by its
    indented description) as ``{name: description}``."""
    section = docstring_sections(doc).get("Arguments", "")
    docs: dict[str, list[str]] = {}
    name = None
    for line in section.splitlines():
        match = re.fullmatch(r"``(\w+)``", line.strip())
        if match and not line.startswith(" "):
            name = match.group(1)
            docs[name] = []
        elif name is not None and line.strip():
            docs[name].append(line.strip())
    return {key: " ".join(value) for key, value in docs.items()}


# --- environment pages ------------------------------------------------------------------


def _load_module(name: str) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return importlib.import_module(f"hmarl.envs.{name}")


def constructor_arguments(module: Any) -> list[tuple[str, str, str]]:
    """``(name, default, description)`` of every keyword argument of the module's
    constructors: ``render_mode`` and ``num_envs`` (``vector_env`` only), then the
    core's. An argument without a description is an error, so the page cannot omit one."""
    core_cls = _core_class(module)
    described = argument_docs(core_cls.__doc__ or "")
    rows = [
        ("render_mode", "None", '`"human"` (a pygame window), `"rgb_array"` (frames from `render()`) or `None`.'),
        ("num_envs", "1", "`vector_env` only: the number of copies stepped together, with auto-reset."),
    ]
    for parameter in list(inspect.signature(core_cls.__init__).parameters.values())[1:]:
        if parameter.name == "num_envs":
            continue
        if parameter.name not in described:
            raise ValueError(
                f"{core_cls.__name__}'s docstring has no entry for the argument {parameter.name!r} in its Arguments section"
            )
        default = "required" if parameter.default is inspect.Parameter.empty else repr(parameter.default)
        rows.append((parameter.name, default, rst_to_markdown(described[parameter.name])))
    unknown = set(described) - {name for name, _, _ in rows}
    if unknown:
        raise ValueError(f"{core_cls.__name__}'s docstring documents arguments it does not take: {sorted(unknown)}")
    return rows


def _core_class(module: Any) -> type:
    venv = module.vector_env(num_envs=1)
    core_cls = type(venv.core)
    venv.close()
    return core_cls


def _space_rows(module: Any, kwargs_list: list[dict[str, Any]]) -> list[str]:
    rows = [
        "| arguments | agents | observation | action | state | goals |",
        "|---|---|---|---|---|---|",
    ]
    for kwargs in kwargs_list:
        env = module.parallel_env(**kwargs)
        env.reset(seed=0)
        agent = env.possible_agents[0]
        obs_space = env.observation_space(agent)["observation"]
        action_space = env.action_space(agent)
        core = env.core
        goals = len(core.goal_names)
        arguments = ", ".join(f"`{k}={v!r}`" for k, v in kwargs.items())
        rows.append(
            f"| {arguments} | {len(env.possible_agents)} | `Box{obs_space.shape}` {obs_space.dtype} "
            f"| `Discrete({action_space.n})` | `Box{env.state_space.shape}` | {goals} |"
        )
        env.close()
    return rows


def environment_page(page: str) -> str:
    """The Markdown of ``environments/<page>.md``."""
    name, older, picture, examples = ENVIRONMENT_PAGES[page]
    module = _load_module(name)
    sections = docstring_sections(module.__doc__ or "")
    first_line, _, intro = sections[""].partition("\n")
    title = first_line.split(",")[0].rstrip(".")
    env = module.parallel_env()
    env.reset(seed=0)
    agent = env.possible_agents[0]
    goal_names = list(env.core.goal_names)
    metadata = env.metadata
    facts = [
        "| | |",
        "|---|---|",
        f"| Import | `from hmarl.envs import {name}` |",
        "| Agents (default arguments) | " + ", ".join(f"`{a}`" for a in env.possible_agents) + " |",
        f"| Actions | `Discrete({env.action_space(agent).n})`: "
        + ", ".join(f"`{a}`" for a in module_action_names(env))
        + " |",
        f"| Observation | `Dict(observation: Box{env.observation_space(agent)['observation'].shape}, "
        f"action_mask: Box{env.observation_space(agent)['action_mask'].shape})` |",
        f"| State | `Box{env.state_space.shape}` |",
        "| Goals | " + ", ".join(f"`{g}`" for g in goal_names) + " |",
        "| Faces | `env` (AEC), `parallel_env`, `raw_env`, `vector_env` (batched) |",
        f"| Render modes | {', '.join(f'`{m}`' for m in metadata['render_modes'])} at {metadata['render_fps']} fps |",
    ]
    env.close()
    out = [
        f"# {title} (`{name}`)",
        "",
        f"*{rst_to_markdown(first_line.rstrip('.'))}.*",
        "",
        f"![{page} played by a trained agent]({picture})",
        "",
        *facts,
        "",
        rst_to_markdown(intro.strip()),
        "",
        "This page is written at build time from the docstring of "
        f"`envs/{name}.py`, the constructor's signature and environments built with "
        "the arguments below.",
    ]
    for section in ("Agents", "Actions", "Observations", "Rewards", "Options and goals"):
        if section not in sections:
            raise ValueError(f"the docstring of {name} has no {section!r} section")
        out += ["", f"## {section}", "", rst_to_markdown(sections[section])]
    out += ["", "## Spaces", "", "Built with `parallel_env(...)` for these arguments:", ""]
    out += _space_rows(module, examples)
    out += [
        "",
        "## Arguments",
        "",
        f"Keyword arguments of `{name}.env`, `parallel_env`, `raw_env` and `vector_env`:",
        "",
        "| argument | default | description |",
        "|---|---|---|",
    ]
    out += [f"| `{arg}` | `{default}` | {text} |" for arg, default, text in constructor_arguments(module)]
    out += ["", "## Version history", "", rst_to_markdown(sections.get("Version History", ""))]
    for old in older:
        old_sections = docstring_sections(_load_module(old).__doc__ or "")
        old_title = old_sections[""].partition("\n")[0]
        out += [
            "",
            f"### `{old}`",
            "",
            rst_to_markdown(old_title),
            "",
            rst_to_markdown(old_sections[""].partition("\n")[2].strip()),
        ]
    return "\n".join(out) + "\n"


def module_action_names(env: Any) -> list[str]:
    names = importlib.import_module(type(env.core).__module__).ACTION_NAMES
    n = env.action_space(env.possible_agents[0]).n
    return list(names) + [f"extra_{k}" for k in range(n - len(names))]


# --- listed folders ---------------------------------------------------------------------


def listed_pages(folder: Path) -> list[Path]:
    """The Markdown pages of ``folder`` but its index, leading pages first."""
    pages = sorted(p for p in folder.glob("*.md") if p.name != "index.md") if folder.is_dir() else []
    lead = [folder / name for name in LEADING_PAGES if folder / name in pages]
    return lead + [p for p in pages if p not in lead]


def page_title(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return path.stem.replace("_", " ").capitalize()


def page_summary(path: Path) -> str:
    """The first sentence of the first paragraph after the title (at most about
    ``SUMMARY_CHARS`` characters)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    paragraph: list[str] = []
    seen_title = False
    for line in lines:
        if line.startswith("# ") and not seen_title:
            seen_title = True
            continue
        if not seen_title:
            continue
        if not line.strip() or line.startswith(("#", "|", "```", "!", "<!--", "- ", "* ")):
            if paragraph:
                break
            continue
        paragraph.append(line.strip())
    text = " ".join(paragraph)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    match = re.match(r"(.+?(?<!et al)(?<!e\.g)(?<!i\.e)\.)(\s|$)", text)
    sentence = match.group(1) if match else text
    if len(sentence) > SUMMARY_CHARS:
        sentence = sentence[:SUMMARY_CHARS].rsplit(" ", 1)[0].rstrip(",;:(") + " …"
    return sentence


def index_page(folder_name: str) -> str:
    heading, intro = LISTED_FOLDERS[folder_name]
    pages = listed_pages(DOCS / folder_name)
    out = [f"# {heading}", "", intro, ""]
    if not pages:
        out.append("No pages yet.")
    for path in pages:
        summary = page_summary(path)
        out.append(f"- [{page_title(path)}]({path.name})" + (f": {summary}" if summary else ""))
    return "\n".join(out) + "\n"


# --- the CLI ----------------------------------------------------------------------------


def cli_help() -> str:
    """``--help`` of ``hmarl`` and of each of its commands, as Markdown."""
    from hmarl import cli
    from hmarl.tune import cli as tune_cli

    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(HELP_COLUMNS)  # argparse wraps to the terminal's width
    try:
        return _cli_help(cli.build_parser(), tune_cli.build_parser())
    finally:
        if columns is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = columns


def _cli_help(parser: Any, tune_parser: Any) -> str:
    out = ["### `hmarl --help`", "", "```text", parser.format_help().rstrip(), "```"]
    commands = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, sub in commands.choices.items():
        text = tune_parser.format_help() if name == "tune" else sub.format_help()
        out += ["", f"### `hmarl {name} --help`", "", "```text", text.rstrip(), "```"]
    return "\n".join(out)


# --- mkdocs events ----------------------------------------------------------------------


def on_config(config: Any) -> Any:
    for entry in config["nav"] or []:
        if not isinstance(entry, dict):
            continue
        for title, folder in (("Results", "results"), ("Research notes", "research")):
            if title in entry:
                entry[title] = [f"{folder}/index.md"] + [
                    {page_title(p): f"{folder}/{p.name}"} for p in listed_pages(DOCS / folder)
                ]
    return config


def generated_pages() -> dict[str, str]:
    """Every page this file writes, by its path under ``docs/``."""
    generated = {f"{folder}/index.md": index_page(folder) for folder in LISTED_FOLDERS}
    generated.update({f"environments/{page}.md": environment_page(page) for page in ENVIRONMENT_PAGES})
    return generated


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    for uri, content in generated_pages().items():
        existing = files.get_file_from_path(uri)
        if existing is not None:
            files.remove(existing)
        files.append(File.generated(config, uri, content=content))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if HELP_MARKER in markdown:
        with contextlib.redirect_stdout(io.StringIO()):
            markdown = markdown.replace(HELP_MARKER, cli_help())
    return markdown


if __name__ == "__main__":
    for uri, content in generated_pages().items():
        (DOCS / uri).write_text(content, encoding="utf-8")
        print(f"wrote docs/{uri}")
