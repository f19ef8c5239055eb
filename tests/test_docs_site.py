"""The docs site: it builds with `mkdocs build --strict`, its links and images check out,
and the pages written from the code say what the code does."""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"docs_{name}", DOCS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hooks = _load("hooks")
check_site = _load("check_site")


def test_the_site_builds_strictly_and_its_links_and_images_check_out(tmp_path):
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "NO_MKDOCS_2_WARNING": "1", "SDL_VIDEODRIVER": "dummy"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert check_site.check_site(site) == []
    for page in (
        "environments/trash_collection",
        "environments/basketball_defense",
        "results",
        "research",
        "cli",
        "libraries/torchrl",
        "algorithms/hierarchical",
        "core/new_method",
    ):
        assert (site / page / "index.html").is_file(), page
    cli_page = (site / "cli" / "index.html").read_text()
    assert "hmarl watch --help" in cli_page and "--max-steps" in cli_page


def _tiny_site(root: Path) -> Path:
    (root / "a").mkdir(parents=True)
    (root / "img.png").write_bytes(b"\x89PNG")
    (root / "index.html").write_text(
        '<h1 id="top">Home</h1><a href="a/">a</a> <a href="a/#part">part</a> <img src="img.png">'
        '<a href="https://example.org/missing">external</a> <a href="#top">self</a>'
    )
    (root / "a" / "index.html").write_text('<h2 id="part">Part</h2><a href="../index.html#top">home</a>')
    return root


def test_the_checker_passes_a_sound_site(tmp_path):
    assert check_site.check_site(_tiny_site(tmp_path)) == []


@pytest.mark.parametrize(
    ("page", "broken", "problem"),
    [
        ("b.html", '<a href="missing/">x</a>', "leads to no page"),
        ("c.html", '<a href="a/#nowhere">x</a>', "no anchor #nowhere"),
        ("d.html", '<img src="img/absent.gif">', "image 'img/absent.gif' does not exist"),
        ("e.html", '<a href="#gone">x</a>', "no anchor #gone"),
    ],
)
def test_the_checker_finds_each_kind_of_break(tmp_path, page, broken, problem):
    site = _tiny_site(tmp_path)
    (site / page).write_text(broken)
    problems = check_site.check_site(site)
    assert len(problems) == 1 and problems[0].startswith(page) and problem in problems[0], problems
    assert check_site.main([str(site)]) == 1


def test_the_checker_refuses_a_folder_without_a_site(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no index\.html"):
        check_site.check_site(tmp_path)


@pytest.mark.parametrize("page", sorted(hooks.ENVIRONMENT_PAGES))
def test_every_constructor_argument_is_on_the_environment_page(page):
    from hmarl import envs

    text = hooks.environment_page(page)
    module = envs.get(hooks.ENVIRONMENT_PAGES[page][0])
    core_cls = type(module.vector_env(num_envs=1).core)
    arguments = list(inspect.signature(core_cls.__init__).parameters)[1:]
    assert len(arguments) >= 5
    table = text.split("## Arguments", 1)[1].split("## ", 1)[0]
    for argument in [*arguments, "render_mode"]:
        assert re.search(rf"^\| `{argument}` \| `[^`]+` \| \S", table, re.M), argument
    for section in (
        "## Agents",
        "## Actions",
        "## Observations",
        "## Rewards",
        "## Options and goals",
        "## Spaces",
        "## Version history",
    ):
        assert section in text


def test_an_undocumented_constructor_argument_stops_the_build(monkeypatch):
    from hmarl.envs.trash_collection.core import TrashCollectionCore

    doc = TrashCollectionCore.__doc__
    monkeypatch.setattr(TrashCollectionCore, "__doc__", doc.replace("``view_size``", "``view_side``"))
    with pytest.raises(ValueError, match="no entry for the argument 'view_size'"):
        hooks.environment_page("trash_collection")


def test_the_results_index_lists_every_page_of_its_folder(tmp_path, monkeypatch):
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "zeta.md").write_text("# Zeta runs\n\nWhat zeta does. More text.\n")
    (folder / "reproduction.md").write_text("# Reproduction\n\nThe tables.\n")
    monkeypatch.setattr(hooks, "DOCS", tmp_path)
    text = hooks.index_page("results")
    assert text.index("[Reproduction](reproduction.md): The tables.") < text.index("[Zeta runs](zeta.md): What zeta does.")
    assert "No pages yet." in hooks.index_page("research")


def _help_options() -> set[str]:
    """Every option string of every trainer and command, from their own parsers."""
    from hmarl import cli

    texts = []
    commands = [["train", name, "--help"] for name in cli.TRAINERS if name != "sac_n"]
    commands += [["train", "sac_n", mode, "--help"] for mode in ("online", "offline")]
    commands += [[name, "--help"] for name in ("eval", "watch", "play", "envs", "bench", "tune")]
    for argv in commands:
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            cli.main(argv)
        texts.append(out.getvalue())
    return set(re.findall(r"--[a-z][a-z0-9-]*", "\n".join(texts)))


#: Options of other tools that the pages name (`tensorboard --logdir runs`).
OTHER_TOOLS_OPTIONS = {"--logdir"}


def test_options_named_on_the_algorithm_pages_exist():
    options = _help_options()
    assert {"--sampler", "--selection", "--sparsity", "--high-level", "--ensemble-size"} <= options
    named = {}
    for page in sorted((DOCS / "algorithms").glob("*.md")):
        for option in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", page.read_text()):
            named.setdefault(option, page.name)
    unknown = {option: page for option, page in named.items() if option not in options | OTHER_TOOLS_OPTIONS}
    assert not unknown, f"options no parser knows: {unknown}"


#: Prefixes the trainers put before an engine's metric names (`low_`, `critic_`, ...).
ENGINE_PREFIXES = ("high_", "low_", "critic_", "actor_", "alpha_", "q_")


def test_tags_named_on_the_algorithm_pages_exist_in_the_code():
    source = "\n".join(p.read_text() for folder in ("hmarl", "trainers", "envs") for p in (ROOT / folder).rglob("*.py"))
    quoted = set(re.findall(r"[\"']([a-z_]+)[\"']", source)) | set(re.findall(r"\{name\}_([a-z_]+)\"", source))
    named = set()
    for page in sorted((DOCS / "algorithms").glob("*.md")):
        named |= set(re.findall(r"`(?:train|eval|episode|sparse)/([a-z_]+)`", page.read_text()))
    assert len(named) >= 20
    missing = []
    for tag in sorted(named):
        candidates = [tag] + [tag[len(prefix) :] for prefix in ENGINE_PREFIXES if tag.startswith(prefix)]
        if not any(candidate in quoted for candidate in candidates):
            missing.append(tag)
    assert not missing, f"tags the code never writes: {missing}"


def test_the_committed_generated_pages_are_what_the_hook_writes():
    """README.md links to these pages, so they are committed; they must not drift from
    the code (``python docs/hooks.py`` rewrites them)."""
    with contextlib.redirect_stdout(io.StringIO()):
        generated = hooks.generated_pages()
    assert set(generated) >= {
        "results/index.md",
        "research/index.md",
        "environments/trash_collection.md",
        "environments/basketball_defense.md",
    }
    stale = [
        uri
        for uri, content in generated.items()
        if not (DOCS / uri).is_file() or (DOCS / uri).read_text(encoding="utf-8") != content
    ]
    assert not stale, f"run `python docs/hooks.py`: these committed pages differ from the generated ones: {stale}"
