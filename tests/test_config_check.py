"""`kpibot config check`: every problem with file, line and hint; a summary when valid."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from kpi_engine.organisation import ConfigError, check_organisation, load_organisation
from tests.conftest import EXAMPLE_CONFIG

runner = CliRunner()


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    target = tmp_path / "config"
    shutil.copytree(EXAMPLE_CONFIG, target)
    return target


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _line_of(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(needle)


def test_example_config_is_valid_and_summarised() -> None:
    result = runner.invoke(app, ["config", "check", str(EXAMPLE_CONFIG)])
    assert result.exit_code == 0, result.output
    assert "Teams (2)" in result.output
    assert (
        "People (17): streamer 6, operator 3, ad_buyer 2, editor 1, cs 2, manager 2, admin 1"
        in result.output
    )
    assert "Shops (3)" in result.output
    assert "amz-jp-01    amazon JP · Asia/Tokyo · JPY" in result.output


def test_every_error_is_located(config_dir: Path) -> None:
    people, shops, org = (
        config_dir / "people.yaml",
        config_dir / "shops.yaml",
        config_dir / "organisation.yaml",
    )
    _edit(
        people,
        "    team: la-ops\n    manager: emily.carter\n    chat: {slack: U07JESSLEE1}",
        "    team: la-opz\n    manager: emily.carter\n    chat: {slack: U07JESSLEE1}",
    )
    _edit(people, "    role: operator\n    team: la-ops", "    role: operater\n    team: la-ops")
    _edit(people, "  - id: wu.min", "  - id: li.na")
    _edit(people, "chat: {slack: U07MARCUSB1}", "chat: {slack: U07JESSLEE1}")
    _edit(shops, "    timezone: Asia/Tokyo", "    timezone: Asia/Tokio")
    _edit(shops, "    currency: GBP", "    currency: GPB")
    _edit(shops, "{person: sun.yue, shop: amz-jp-01", "{person: sun.yue, shop: amz-jp-02")
    _edit(org, "    language: en", "    language: en\n    colour: blue")

    organisation, problems = check_organisation(config_dir)
    assert organisation is None
    errors = {(Path(p.file).name, p.line, p.path): p for p in problems if p.severity == "error"}

    def find(file: str, needle: str, path: str) -> str:
        problem = errors[(file, _line_of(config_dir / file, needle), path)]
        return f"{problem.message} | {problem.hint}"

    assert find("people.yaml", "team: la-opz", "people[12].team") == (
        "unknown team 'la-opz' | did you mean 'la-ops'?"
    )
    role = find("people.yaml", "role: operater", "people[14].role")
    assert role.startswith("Input should be 'streamer'") and role.endswith(
        "did you mean 'operator'?"
    )
    dup = [p for p in problems if p.message == "duplicate person id 'li.na'"]
    assert len(dup) == 1 and dup[0].path == "people[9].id"
    assert dup[0].hint == f"first defined at {people}:{_line_of(people, 'id: li.na')}"
    chat = [p for p in problems if "already belongs to 'jessica.lee'" in p.message]
    assert len(chat) == 1 and chat[0].path == "people[13].chat.slack"
    assert (
        find("shops.yaml", "Asia/Tokio", "shops[2].timezone")
        == "unknown time zone 'Asia/Tokio' | did you mean 'Asia/Tokyo'?"
    )
    assert (
        find("shops.yaml", "currency: GPB", "shops[1].currency")
        == "unknown currency 'GPB' | did you mean 'GBP'?"
    )
    assert (
        find("shops.yaml", "amz-jp-02", "assignments[5].shop")
        == "unknown shop 'amz-jp-02' | did you mean 'amz-jp-01'?"
    )
    assert find("organisation.yaml", "colour: blue", "teams[1].colour").startswith(
        "unknown key 'colour'"
    )

    result = runner.invoke(app, ["config", "check", str(config_dir)])
    assert result.exit_code == 1
    assert (
        f"shops.yaml:{_line_of(shops, 'Asia/Tokio')}: error: shops[2].timezone: unknown time zone"
        in result.output
    )
    assert f"{len(errors)} error(s)" in result.output


def test_structural_errors(config_dir: Path) -> None:
    (config_dir / "extra.yaml").write_text("shopz: []\nteams: {id: x}\n", encoding="utf-8")
    (config_dir / "broken.yaml").write_text("people:\n  - id: a\n   name: b\n", encoding="utf-8")
    _, problems = check_organisation(config_dir)
    messages = {(Path(p.file).name, p.line, p.message, p.hint) for p in problems}
    assert ("extra.yaml", 1, "unknown section 'shopz'", "did you mean 'shops'?") in messages
    assert (
        "extra.yaml",
        2,
        "section 'teams' must be a list",
        "start each entry with '- '",
    ) in messages
    assert any(
        f == "broken.yaml" and line == 3 and m.startswith("invalid YAML")
        for f, line, m, _ in messages
    )


def test_a_file_saved_as_gbk_is_a_located_error_not_a_traceback(config_dir: Path) -> None:
    organisation = config_dir / "organisation.yaml"
    text = organisation.read_text(encoding="utf-8")
    organisation.write_bytes(text.encode("gb18030"))
    line = text[: min(i for i, c in enumerate(text) if ord(c) > 127)].count("\n") + 1
    result = CliRunner().invoke(app, ["config", "check", str(config_dir)])
    assert result.exit_code == 1
    assert f"organisation.yaml:{line}: error" in result.output
    assert "is not UTF-8 text" in result.output and "Traceback" not in result.output
    assert "1 error(s)" in result.output  # not one for every reference to what it defines


def test_manager_cycle_and_missing_keys(config_dir: Path) -> None:
    people = config_dir / "people.yaml"
    _edit(
        people,
        "    role: admin\n    team: sz-live\n",
        "    role: admin\n    team: sz-live\n    manager: wang.fang\n",
    )
    _edit(people, "    name: Sophia Nguyen\n", "")
    _, problems = check_organisation(config_dir)
    texts = [str(p) for p in problems if p.severity == "error"]
    assert any("managers form a cycle: chen.hao -> wang.fang -> chen.hao" in t for t in texts), (
        texts
    )
    assert any("people[15].name: missing required key 'name'" in t for t in texts), texts


def test_load_raises_with_all_errors(config_dir: Path) -> None:
    _edit(config_dir / "shops.yaml", "    region: US", "    region: USA")
    with pytest.raises(ConfigError) as caught:
        load_organisation(config_dir)
    assert [p.path for p in caught.value.problems] == ["shops[0].region"]


def test_empty_or_missing_directory(tmp_path: Path) -> None:
    result = runner.invoke(app, ["config", "check", str(tmp_path)])
    assert result.exit_code == 1
    assert "no *.yaml files" in result.output
    result = runner.invoke(app, ["config", "check", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert "configuration directory not found" in result.output


def test_chat_identity_lookup() -> None:
    organisation = load_organisation(EXAMPLE_CONFIG)
    person = organisation.person_by_chat_id("feishu", "ou_2b3c4d5e6f708192a3b4c5d6e7f80112")
    assert person is not None and person.id == "li.na"
    assert organisation.language_of(person) == "zh"
    assert organisation.person_by_chat_id("slack", "U_NOBODY") is None


def test_one_yaml_syntax_error_is_reported_once_without_its_cascade(config_dir: Path) -> None:
    people = config_dir / "people.yaml"
    _edit(people, "    name: 李娜\n", "    name: 李娜\n   role streamer: [\n")
    organisation, problems = check_organisation(config_dir)
    assert organisation is None
    [problem] = problems  # not one "unknown person" for every reference to li.na and the rest
    assert Path(problem.file).name == "people.yaml" and problem.message.startswith("invalid YAML")
    assert problem.line is not None and abs(problem.line - _line_of(people, "role streamer")) <= 1
    result = runner.invoke(app, ["config", "check", str(config_dir)])
    assert result.exit_code == 1 and "1 error(s)" in result.output
    assert "people.yaml:" in result.output and "unknown person" not in result.output


@pytest.mark.parametrize(
    "content",
    [
        bytes(range(256)) * 4,  # a binary file that happens to be named .yaml
        b"teams:\n  - id: x\x00y\n",  # UTF-8 with a NUL in it
        b"\xff\xfet\x00e\x00a\x00m\x00s\x00:\x00",  # UTF-16, as Notepad saves "Unicode"
    ],
)
def test_a_binary_or_undecodable_file_is_an_error_naming_the_file(
    config_dir: Path, content: bytes
) -> None:
    (config_dir / "shops.yaml").write_bytes(content)
    result = runner.invoke(app, ["config", "check", str(config_dir)])
    assert result.exit_code == 1
    assert "shops.yaml:" in result.output and "Traceback" not in result.output
    assert "1 error(s)" in result.output, result.output
