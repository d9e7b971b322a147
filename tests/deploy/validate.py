#!/usr/bin/env python3
"""Checks the deployment files against the schemas of their formats and against the code.

What it checks (every problem is reported, then the exit status is 1):
- deploy/docker-compose*.yml: the Compose specification's JSON schema; services, volumes and
  networks they name exist; bind-mounted files exist; production: secrets are required
  (`${VAR:?message}`, no default), the servers wait for the migration job to complete, restart
  policies, two replicas at least, a shared access-token key.
- deploy/k8s/*.yaml: the Kubernetes JSON schemas (strict: unknown keys are errors) of one
  Kubernetes version; ConfigMaps, Secrets, claims, HPA targets, selectors and probe ports they
  name exist; crmbet containers run non-root with a read-only root filesystem and resource
  requests and limits; kustomization.yaml lists every manifest.
- deploy/Dockerfile: every COPY source exists and is not excluded by .dockerignore, stages
  named by --from exist, the binary is built with --locked and embeds web-client/dist, the
  final stage runs as a non-root user with a HEALTHCHECK, EXPOSEs the port it listens on and
  listens on every interface; ENTRYPOINT is crmbet.
- Every crmbet command line (Dockerfile CMD, compose `command`, Kubernetes `args`): the
  subcommand and its flags exist in crates/crmbet/src/cli.rs.
- railway.json: parses, uses only known keys, builds the Dockerfile above, checks /health.
- Setting names (CRMBET_*, DATABASE_URL, REDIS_URL, AMQP_URL) used anywhere above are listed
  in .env.example, and every one listed there has a row in docs/operations.md.

`--self-test` applies known mistakes (a misspelled key, a wrong type, a typo in a setting name
or subcommand…) to in-memory copies of the files and fails unless each one is reported.

No Docker engine or Kubernetes API server is needed: everything is read from the files.
Run by scripts/lib/deploy_check.sh; by hand:
    python tests/deploy/validate.py [--root DIR] [--kubernetes-version 1.33.0] [--self-test]
"""

from __future__ import annotations

import argparse
import difflib
import fnmatch
import glob
import importlib.resources
import json
import os
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import jsonschema
import referencing
import referencing.jsonschema
import yaml

KUBERNETES_VERSION = "1.33.0"
DOCKERFILE = "deploy/Dockerfile"
K8S_FOLDER = "deploy/k8s"
COMPOSE_FILES = ("deploy/docker-compose.yml", "deploy/docker-compose.production.yml")
CLI_SOURCE = "crates/crmbet/src/cli.rs"
OPERATIONS_DOC = "docs/operations.md"
# Setting names the code reads (crates/crmbet-core/src/config.rs); others (AWS_*, POSTGRES_*)
# belong to other programs.
SETTING_NAME = re.compile(r"^(CRMBET_[A-Z0-9_]+|DATABASE_URL|REDIS_URL|AMQP_URL)$")
SECRET_LIKE = re.compile(r"SECRET|PASSWORD|API_KEY|TOKEN")
# Railway's documented config-as-code settings (docs.railway.com, "Config as Code").
RAILWAY_KEYS = {
    "": {"$schema", "build", "deploy"},
    "build": {"builder", "buildCommand", "watchPatterns", "dockerfilePath",
              "nixpacksConfigPath", "nixpacksPlan", "nixpacksVersion", "railpackVersion"},
    "deploy": {"startCommand", "preDeployCommand", "numReplicas", "healthcheckPath",
               "healthcheckTimeout", "restartPolicyType", "restartPolicyMaxRetries",
               "cronSchedule", "sleepApplication", "region", "multiRegionConfig", "runtime"},
}


# ---------------------------------------------------------------------------------------
# Files: the repository, with optional in-memory replacements (for --self-test)
# ---------------------------------------------------------------------------------------

@dataclass
class Tree:
    """The repository's files, where `replaced` maps a relative path to the text to use instead."""

    root: Path
    replaced: dict[str, str] = field(default_factory=dict)

    def read(self, relative: str) -> str:
        if relative in self.replaced:
            return self.replaced[relative]
        return (self.root / relative).read_text(encoding="utf-8")

    def exists(self, relative: str) -> bool:
        return relative in self.replaced or (self.root / relative).exists()

    def is_dir(self, relative: str) -> bool:
        return (self.root / relative).is_dir()

    def matching(self, pattern: str) -> list[str]:
        """Relative paths matching a glob pattern (files and folders)."""
        found = {
            os.path.relpath(path, self.root)
            for path in glob.glob(str(self.root / pattern), include_hidden=True)
        }
        found.update(path for path in self.replaced if fnmatch.fnmatchcase(path, pattern))
        return sorted(found)


@dataclass
class Problems:
    """Every problem found, as (file, message)."""

    found: list[tuple[str, str]] = field(default_factory=list)

    def add(self, file: str, message: str) -> None:
        if (file, message) not in self.found:
            self.found.append((file, message))


def load_yaml_documents(tree: Tree, relative: str, problems: Problems) -> list[Any]:
    try:
        return [document for document in yaml.safe_load_all(tree.read(relative)) if document is not None]
    except yaml.YAMLError as error:
        problems.add(relative, f"is not valid YAML: {error}")
        return []


def strings_in(value: Any) -> Iterable[str]:
    """Every string in a parsed YAML/JSON value, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str):
                yield key
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


def json_path(path: Iterable[Any]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def listens_everywhere(address: str) -> bool:
    return address.startswith("0.0.0.0:") or address.startswith("[::]:")


# ---------------------------------------------------------------------------------------
# Settings: .env.example is the list of names
# ---------------------------------------------------------------------------------------

def setting_names(tree: Tree, problems: Problems) -> set[str]:
    names = {
        match.group(1)
        for match in re.finditer(r"^([A-Z][A-Z0-9_]*)=", tree.read(".env.example"), re.MULTILINE)
    }
    if len(names) < 10:
        problems.add(".env.example", f"lists only {len(names)} settings; the parser expects NAME=value lines")
    return names


def check_setting_name(name: str, known: set[str], file: str, where: str, problems: Problems) -> None:
    if not SETTING_NAME.match(name) or name in known:
        return
    suggestion = difflib.get_close_matches(name, sorted(known), n=1)
    hint = f"; did you mean {suggestion[0]}?" if suggestion else ""
    problems.add(file, f"{where}: {name} is not a setting of crmbet (not in .env.example){hint}")


def check_operations_doc(tree: Tree, known: set[str], problems: Problems) -> None:
    if not tree.exists(OPERATIONS_DOC):
        problems.add(OPERATIONS_DOC, "is missing; it holds the configuration table")
        return
    documented = set(re.findall(r"^\|\s*`([A-Z][A-Z0-9_]*)`", tree.read(OPERATIONS_DOC), re.MULTILINE))
    for name in sorted(known - documented):
        problems.add(OPERATIONS_DOC, f"the configuration table has no row for {name} (listed in .env.example)")


# ---------------------------------------------------------------------------------------
# The command line, read from the clap definitions in crates/crmbet/src/cli.rs
# ---------------------------------------------------------------------------------------

@dataclass
class Command:
    flags: set[str] = field(default_factory=set)
    subcommands: dict[str, "Command"] | None = None


@dataclass
class CommandLine:
    global_flags: set[str]
    commands: dict[str, Command]


def kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).replace("_", "-").lower()


def rust_items(source: str) -> dict[str, tuple[str, str]]:
    """`pub struct`/`pub enum` name -> (kind, body between its braces)."""
    items = {}
    for match in re.finditer(r"pub (struct|enum) (\w+)\s*\{", source):
        depth, start = 1, match.end()
        position = start
        while depth and position < len(source):
            depth += {"{": 1, "}": -1}.get(source[position], 0)
            position += 1
        items[match.group(2)] = (match.group(1), source[start:position - 1])
    return items


def top_level_entries(body: str) -> list[str]:
    """`body` split at the commas outside brackets: one entry per field or variant."""
    entries, depth, current = [], 0, ""
    for index, character in enumerate(body):
        previous = body[index - 1] if index else ""
        if character in "([{" or (character == "<" and previous != " "):
            depth += 1
        elif character in ")]}" or (character == ">" and previous not in "-= "):
            depth -= 1
        if character == "," and depth == 0:
            entries.append(current)
            current = ""
        else:
            current += character
    entries.append(current)
    return [entry.strip() for entry in entries if entry.strip()]


def split_attributes(entry: str) -> tuple[str, str]:
    """(the `#[...]` attributes, the rest) of one field or variant."""
    attributes = ""
    entry = entry.strip()
    while entry.startswith("#["):
        depth, end = 0, len(entry)
        for index, character in enumerate(entry[1:], start=1):
            depth += {"[": 1, "]": -1}.get(character, 0)
            if depth == 0:
                end = index + 1
                break
        attributes += entry[:end]
        entry = entry[end:].strip()
    return attributes, entry


def struct_fields(body: str) -> list[tuple[str, str, str]]:
    """(attributes, name, type) of each field."""
    fields = []
    for entry in top_level_entries(body):
        attributes, declaration = split_attributes(entry)
        match = re.match(r"(?:pub\s+)?(\w+)\s*:\s*(.+)", declaration, re.DOTALL)
        if match:
            type_name = re.sub(r"^Option<(.*)>$", r"\1", match.group(2).strip())
            fields.append((attributes, match.group(1), type_name))
    return fields


def enum_variants(body: str) -> list[tuple[str, str, str]]:
    """(attributes, name, payload) of each variant; payload is `(Type)`, `{fields}` or ``."""
    variants = []
    for entry in top_level_entries(body):
        attributes, declaration = split_attributes(entry)
        match = re.match(r"(\w+)\s*(.*)", declaration, re.DOTALL)
        if match:
            variants.append((attributes, match.group(1), match.group(2).strip()))
    return variants


def without_comments(source: str) -> str:
    """The source without `//` comments that stand on their own line or after code."""
    return re.sub(r"(?m)^\s*//[^\n]*$|\s//\s[^\n]*$", "", source)


def read_command_line(tree: Tree, problems: Problems) -> CommandLine:
    items = rust_items(without_comments(tree.read(CLI_SOURCE)))

    def flags_of(fields: list[tuple[str, str, str]]) -> tuple[set[str], dict[str, Command] | None]:
        flags, subcommands = set(), None
        for attributes, name, type_name in fields:
            if "command(flatten)" in attributes and type_name in items:
                nested, _ = flags_of(struct_fields(items[type_name][1]))
                flags |= nested
            elif "command(subcommand)" in attributes and type_name in items:
                subcommands = commands_of(items[type_name][1])
            elif re.search(r"\blong\b", attributes):
                custom = re.search(r'\blong\s*=\s*"([^"]+)"', attributes)
                flags.add("--" + (custom.group(1) if custom else kebab(name)))
        return flags, subcommands

    def commands_of(enum_body: str) -> dict[str, Command]:
        commands = {}
        for attributes, name, payload in enum_variants(enum_body):
            renamed = re.search(r'\bname\s*=\s*"([^"]+)"', attributes)
            command_name = renamed.group(1) if renamed else kebab(name)
            if payload.startswith("("):
                type_name = payload.strip("() ")
                fields = struct_fields(items[type_name][1]) if type_name in items else []
            else:
                fields = struct_fields(payload.strip().removeprefix("{").removesuffix("}"))
            flags, subcommands = flags_of(fields)
            commands[command_name] = Command(flags, subcommands)
        return commands

    if "Cli" not in items or "Command" not in items:
        problems.add(CLI_SOURCE, "no `pub struct Cli` / `pub enum Command` found; update read_command_line in tests/deploy/validate.py")
        return CommandLine(set(), {})
    global_flags = {
        "--" + kebab(name)
        for attributes, name, _ in struct_fields(items["Cli"][1])
        if "global = true" in attributes
    }
    commands = commands_of(items["Command"][1])
    if "serve" not in commands or "migrate" not in commands:
        problems.add(CLI_SOURCE, f"read subcommands {sorted(commands)} without serve and migrate; update read_command_line in tests/deploy/validate.py")
    return CommandLine(global_flags | {"--help"}, commands)


def check_invocation(arguments: list[str], command_line: CommandLine, file: str, where: str,
                     problems: Problems) -> str | None:
    """Checks `crmbet ARGUMENTS`; returns the subcommand (None when it is unknown)."""
    tokens = list(arguments)
    while tokens and tokens[0].split("=")[0] in command_line.global_flags:
        flag = tokens.pop(0)
        if "=" not in flag and tokens:
            tokens.pop(0)
    if not tokens:
        problems.add(file, f"{where}: `crmbet {' '.join(arguments)}` names no subcommand")
        return None
    name, tokens = tokens[0], tokens[1:]
    command = command_line.commands.get(name)
    if command is None:
        problems.add(file, f"{where}: `crmbet {name}` is not a subcommand; crmbet has {', '.join(sorted(command_line.commands))}")
        return None
    label = name
    if command.subcommands is not None:
        action = tokens[0] if tokens else ""
        if action not in command.subcommands:
            problems.add(file, f"{where}: `crmbet {name} {action}` is not a command; {name} takes {', '.join(sorted(command.subcommands))}")
            return None
        command, tokens, label = command.subcommands[action], tokens[1:], f"{name} {action}"
    for token in tokens:
        if not token.startswith("--"):
            continue
        flag = token.split("=")[0]
        if flag not in command.flags | command_line.global_flags:
            known = ", ".join(sorted(command.flags)) or "no flags"
            problems.add(file, f"{where}: `crmbet {label}` has no flag {flag} (it takes {known})")
    return name


# ---------------------------------------------------------------------------------------
# Dockerfile and .dockerignore
# ---------------------------------------------------------------------------------------

@dataclass
class Instruction:
    keyword: str
    arguments: str
    line: int


@dataclass
class Stage:
    name: str | None
    index: int
    instructions: list[Instruction] = field(default_factory=list)


@dataclass
class Image:
    """What the final stage sets, for the compose and Kubernetes checks."""

    environment: dict[str, str] = field(default_factory=dict)
    command: list[str] = field(default_factory=list)


def dockerfile_instructions(text: str) -> list[Instruction]:
    instructions, pending, first_line = [], "", 0
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if not pending:
            first_line = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        whole = (pending + stripped).strip()
        pending = ""
        keyword, _, arguments = whole.partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip(), first_line))
    return instructions


def exec_form(arguments: str) -> list[str] | None:
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, list) and all(isinstance(item, str) for item in value) else None


def ignore_patterns(tree: Tree) -> list[tuple[bool, re.Pattern[str]]]:
    """The .dockerignore rules as (is_exception, regex), in order."""
    if not tree.exists(".dockerignore"):
        return []
    rules = []
    for line in tree.read(".dockerignore").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        pattern = os.path.normpath(line.lstrip("!").strip().lstrip("/"))
        regex = ""
        index = 0
        while index < len(pattern):
            if pattern.startswith("**/", index):
                regex += "(?:.*/)?"
                index += 3
            elif pattern.startswith("**", index):
                regex += ".*"
                index += 2
            elif pattern[index] == "*":
                regex += "[^/]*"
                index += 1
            elif pattern[index] == "?":
                regex += "[^/]"
                index += 1
            else:
                regex += re.escape(pattern[index])
                index += 1
        rules.append((exception, re.compile(regex + r"\Z")))
    return rules


def is_ignored(relative: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether the build context leaves out `relative` (the path or a folder above it matches)."""
    parts = relative.split("/")
    candidates = ["/".join(parts[:count]) for count in range(1, len(parts) + 1)]
    ignored = False
    for exception, regex in rules:
        if any(regex.match(candidate) for candidate in candidates):
            ignored = not exception
    return ignored


def check_dockerfile(tree: Tree, command_line: CommandLine, known: set[str], problems: Problems) -> Image:
    file = DOCKERFILE
    image = Image()
    if not tree.exists(file):
        problems.add(file, "is missing")
        return image
    stages: list[Stage] = []
    for instruction in dockerfile_instructions(tree.read(file)):
        if instruction.keyword == "FROM":
            words = [word for word in instruction.arguments.split() if not word.startswith("--")]
            name = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
            stages.append(Stage(name, len(stages)))
        elif stages:
            stages[-1].instructions.append(instruction)
        elif instruction.keyword not in {"ARG"}:
            problems.add(file, f"line {instruction.line}: {instruction.keyword} before the first FROM")
    if not stages:
        problems.add(file, "has no FROM")
        return image
    rules = ignore_patterns(tree)
    names = {stage.name for stage in stages if stage.name}
    builds_binary = False
    for stage in stages:
        earlier = {s.name for s in stages[:stage.index] if s.name} | {str(i) for i in range(stage.index)}
        receives_dashboard = False
        for instruction in stage.instructions:
            where = f"line {instruction.line}"
            if instruction.keyword in {"COPY", "ADD"}:
                words = exec_form(instruction.arguments) or shlex.split(instruction.arguments)
                flags = [word for word in words if word.startswith("--")]
                paths = [word for word in words if not word.startswith("--")]
                if len(paths) < 2:
                    problems.add(file, f"{where}: {instruction.keyword} needs a source and a destination")
                    continue
                sources, destination = paths[:-1], paths[-1]
                source_stage = next((flag.split("=", 1)[1] for flag in flags if flag.startswith("--from=")), None)
                if destination.rstrip("/").endswith("web-client/dist"):
                    receives_dashboard = True
                if source_stage is not None:
                    if source_stage not in earlier and source_stage in names | {str(i) for i in range(len(stages))}:
                        problems.add(file, f"{where}: --from={source_stage} names a later stage")
                    elif source_stage not in earlier and ":" not in source_stage and "/" not in source_stage:
                        problems.add(file, f"{where}: --from={source_stage} is not a stage defined above (stages: {', '.join(sorted(names))})")
                    continue
                for source in sources:
                    relative = os.path.normpath(source.lstrip("/")) if source not in {".", "./"} else "."
                    matches = tree.matching(relative) if any(c in relative for c in "*?[") else (
                        [relative] if tree.exists(relative) else [])
                    if not matches:
                        problems.add(file, f"{where}: COPY source {source} does not exist in the build context (the repository root)")
                        continue
                    for match in matches:
                        if match != "." and is_ignored(match, rules):
                            problems.add(file, f"{where}: COPY source {match} is excluded by .dockerignore")
                    if relative in {"web-client", "."} and not is_ignored("web-client/dist", rules):
                        receives_dashboard = True
            elif instruction.keyword == "RUN" and re.search(r"\bcargo build\b", instruction.arguments):
                builds_binary = True
                if "--locked" not in instruction.arguments:
                    problems.add(file, f"{where}: cargo build without --locked: the image must build what Cargo.lock says")
                if not receives_dashboard:
                    problems.add(file, f"{where}: this stage builds crmbet without web-client/dist (crates/crmbet-server/build.rs embeds it; the image would serve no dashboard): COPY it in before cargo build")
    if not builds_binary:
        problems.add(file, "no stage runs `cargo build`")

    final = stages[-1]
    user, healthcheck, exposed, entrypoint = None, None, [], None
    for instruction in final.instructions:
        where = f"line {instruction.line}"
        if instruction.keyword == "ENV":
            pairs = shlex.split(instruction.arguments)
            if pairs and "=" not in pairs[0]:
                pairs = [f"{pairs[0]}={' '.join(pairs[1:])}"]
            for pair in pairs:
                name, _, value = pair.partition("=")
                image.environment[name] = value
                check_setting_name(name, known, file, f"{where}: ENV", problems)
        elif instruction.keyword == "USER":
            user = instruction.arguments.split(":")[0]
        elif instruction.keyword == "HEALTHCHECK":
            healthcheck = instruction.arguments
        elif instruction.keyword == "EXPOSE":
            exposed += [port.split("/")[0] for port in instruction.arguments.split()]
        elif instruction.keyword == "ENTRYPOINT":
            entrypoint = exec_form(instruction.arguments)
            if entrypoint is None:
                problems.add(file, f"{where}: ENTRYPOINT must be in exec form (a JSON array) so signals reach crmbet")
        elif instruction.keyword == "CMD":
            command = exec_form(instruction.arguments)
            if command is None:
                problems.add(file, f"{where}: CMD must be in exec form (a JSON array)")
            else:
                image.command = command
    if user is None or user in {"root", "0"}:
        problems.add(file, "the final stage runs as root: add USER with a non-root numeric id")
    if healthcheck is None or healthcheck.upper().startswith("NONE"):
        problems.add(file, "the final stage has no HEALTHCHECK")
    listen = image.environment.get("CRMBET_LISTEN", "")
    if not listens_everywhere(listen):
        problems.add(file, f"the final stage must set CRMBET_LISTEN to 0.0.0.0:PORT (the default 127.0.0.1 is unreachable from outside a container), got {listen or 'nothing'}")
    elif listen.rsplit(":", 1)[1] not in exposed:
        problems.add(file, f"EXPOSE {' '.join(exposed) or '(none)'} does not include the listen port of CRMBET_LISTEN={listen}")
    if entrypoint is not None and (not entrypoint or os.path.basename(entrypoint[0]) != "crmbet"):
        problems.add(file, f"ENTRYPOINT must run crmbet, got {entrypoint}")
    if image.command:
        check_invocation(image.command, command_line, file, "CMD", problems)
    else:
        problems.add(file, "the final stage has no CMD (the default subcommand, serve)")
    return image


# ---------------------------------------------------------------------------------------
# Compose
# ---------------------------------------------------------------------------------------

INTERPOLATION = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|(?<!\$)\$([A-Za-z_][A-Za-z0-9_]*)")


def compose_schema() -> dict[str, Any]:
    resource = importlib.resources.files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json")
    return json.loads(resource.read_text(encoding="utf-8"))


def service_environment(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        pairs = (item.partition("=") for item in environment if isinstance(item, str))
        return {name: value for name, _, value in pairs}
    return {str(name): "" if value is None else str(value) for name, value in environment.items()}


def is_crmbet_service(service: dict[str, Any]) -> bool:
    build = service.get("build")
    if isinstance(build, dict) and str(build.get("dockerfile", "")).endswith("Dockerfile") and "deploy" in str(build.get("dockerfile", "")):
        return True
    return "crmbet" in str(service.get("image", "")).split("/")[-1]


def service_command(service: dict[str, Any], image: Image) -> list[str]:
    command = service.get("command")
    if command is None:
        return list(image.command)
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def check_compose(tree: Tree, file: str, schema: dict[str, Any], image: Image, command_line: CommandLine,
                  known: set[str], problems: Problems) -> None:
    documents = load_yaml_documents(tree, file, problems)
    if not documents:
        if tree.exists(file):
            problems.add(file, "is empty")
        return
    compose = documents[0]
    validator = jsonschema.Draft202012Validator(schema)
    for error in sorted(validator.iter_errors(compose), key=lambda error: list(map(str, error.absolute_path))):
        problems.add(file, f"{json_path(error.absolute_path)}: {error.message} (Compose specification)")
    if not isinstance(compose, dict) or not isinstance(compose.get("services"), dict):
        return
    production = "production" in file
    folder = os.path.dirname(file)

    for text in strings_in(compose):
        for match in INTERPOLATION.finditer(text):
            name = match.group(1) or match.group(4)
            check_setting_name(name, known, file, f"${{{name}}}", problems)
            operator, default = match.group(2), match.group(3) or ""
            if production and SECRET_LIKE.search(name) and operator in {"-", ":-"} and default:
                problems.add(file, f"${{{name}{operator}{default}}}: a secret with a default; production takes it from the environment: ${{{name}:?message}}")

    declared = {kind: set((compose.get(kind) or {}).keys()) for kind in ("volumes", "networks")}
    services = compose["services"]
    migrations = set()
    for name, service in services.items():
        if not isinstance(service, dict):
            continue
        where = f"services.{name}"
        environment = service_environment(service)
        for setting in environment:
            check_setting_name(setting, known, file, f"{where}.environment", problems)
        dependencies = service.get("depends_on") or {}
        for dependency in dependencies:
            if dependency not in services:
                problems.add(file, f"{where}.depends_on: {dependency} is not a service of this file")
        for mount in service.get("volumes") or []:
            source = mount.split(":")[0] if isinstance(mount, str) else str((mount or {}).get("source", ""))
            if not source:
                continue
            if source.startswith((".", "/", "~")):
                if source.startswith(".") and not tree.exists(os.path.normpath(os.path.join(folder, source))):
                    problems.add(file, f"{where}.volumes: {source} does not exist (relative to {folder}/)")
            elif source not in declared["volumes"]:
                problems.add(file, f"{where}.volumes: named volume {source} is not declared under the top-level volumes")
        networks = service.get("networks") or []
        for network in networks if isinstance(networks, list) else networks.keys():
            if network not in declared["networks"] and network != "default":
                problems.add(file, f"{where}.networks: {network} is not declared under the top-level networks")
        if not is_crmbet_service(service):
            continue
        command = service_command(service, image)
        entrypoint = service.get("entrypoint")
        if entrypoint is None or os.path.basename(str(entrypoint if isinstance(entrypoint, str) else entrypoint[0])) == "crmbet":
            subcommand = check_invocation(command, command_line, file, f"{where}.command", problems)
        else:
            subcommand = None
        if subcommand == "migrate":
            migrations.add(name)
        if subcommand != "serve":
            continue
        listen = environment.get("CRMBET_LISTEN", image.environment.get("CRMBET_LISTEN", ""))
        if not listens_everywhere(listen):
            problems.add(file, f"{where}: CRMBET_LISTEN={listen or '(unset)'} is unreachable from outside the container; use 0.0.0.0:3000")
        if production:
            check_production_server(file, where, service, environment, dependencies, problems)

    if production:
        servers = [name for name, service in services.items()
                   if isinstance(service, dict) and is_crmbet_service(service)
                   and (service_command(service, image)[:1] == ["serve"])]
        if not migrations:
            problems.add(file, "no one-off service runs `crmbet migrate up` before the servers")
        for server in servers:
            dependencies = services[server].get("depends_on") or {}
            for migration in migrations:
                condition = dependencies.get(migration, {}).get("condition") if isinstance(dependencies, dict) else None
                if condition != "service_completed_successfully":
                    problems.add(file, f"services.{server}.depends_on.{migration}: condition must be service_completed_successfully (the servers start after the migrations succeeded), got {condition}")
        for name, service in services.items():
            if isinstance(service, dict) and name not in migrations and not (service.get("restart") or (service.get("deploy") or {}).get("restart_policy")):
                problems.add(file, f"services.{name}: no restart policy (restart: unless-stopped)")


def check_production_server(file: str, where: str, service: dict[str, Any], environment: dict[str, str],
                            dependencies: Any, problems: Problems) -> None:
    replicas = (service.get("deploy") or {}).get("replicas", 1)
    if not isinstance(replicas, int) or replicas < 2:
        problems.add(file, f"{where}.deploy.replicas: production runs two servers at least, got {replicas}")
    key = environment.get("CRMBET_JWT_SECRET", "") or environment.get("CRMBET_JWT_KEY_FILE", "")
    if not key:
        problems.add(file, f"{where}: neither CRMBET_JWT_SECRET nor CRMBET_JWT_KEY_FILE is set: each replica would sign with a random key of its own and refuse the other's tokens")
    elif "CRMBET_JWT_SECRET" in environment and "${CRMBET_JWT_SECRET:?" not in key:
        problems.add(file, f"{where}: CRMBET_JWT_SECRET must come from the environment as ${{CRMBET_JWT_SECRET:?message}}, got {key}")


# ---------------------------------------------------------------------------------------
# Kubernetes
# ---------------------------------------------------------------------------------------

class KubernetesSchemas:
    """The JSON schemas bundled by kubernetes-validate, one validator per kind (strict)."""

    def __init__(self, version: str) -> None:
        folder = importlib.resources.files("kubernetes_validate").joinpath("kubernetes-json-schema")
        available = sorted(entry.name for entry in folder.iterdir() if entry.name.endswith("-local-strict"))
        self.folder = folder.joinpath(f"v{version}-local-strict")
        if not self.folder.is_dir():
            raise SystemExit(f"kubernetes-validate has no schemas for {version}; it has {', '.join(available)}")
        definitions = json.loads(self.folder.joinpath("_definitions.json").read_text(encoding="utf-8"))
        self.registry = referencing.Resource.from_contents(definitions) @ referencing.Registry()
        self.validators: dict[str, jsonschema.protocols.Validator | None] = {}

    def validator(self, kind: str, api_version: str) -> jsonschema.protocols.Validator | None:
        group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
        name = f"{kind.lower()}-{group_version}.json"
        if name not in self.validators:
            path = self.folder.joinpath(name)
            if not path.is_file():
                self.validators[name] = None
            else:
                schema = json.loads(path.read_text(encoding="utf-8"))
                self.validators[name] = jsonschema.Draft202012Validator(schema, registry=self.registry)
        return self.validators[name]


def pod_spec(manifest: dict[str, Any]) -> dict[str, Any] | None:
    kind, spec = manifest.get("kind"), manifest.get("spec") or {}
    if kind in {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"}:
        return (spec.get("template") or {}).get("spec")
    if kind == "CronJob":
        return (((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}).get("spec")
    return None


def pod_labels(manifest: dict[str, Any]) -> dict[str, str]:
    spec = manifest.get("spec") or {}
    if manifest.get("kind") == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    return ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}


def check_kubernetes(tree: Tree, version: str, image: Image, command_line: CommandLine, known: set[str],
                     problems: Problems) -> int:
    schemas = KubernetesSchemas(version)
    files = tree.matching(f"{K8S_FOLDER}/*.yaml") + tree.matching(f"{K8S_FOLDER}/*.yml")
    manifests: list[tuple[str, dict[str, Any]]] = []
    kustomization = None
    for file in files:
        for document in load_yaml_documents(tree, file, problems):
            if not isinstance(document, dict):
                problems.add(file, "a document is not a mapping")
            elif document.get("kind") == "Kustomization":
                kustomization = (file, document)
            else:
                manifests.append((file, document))
    if not manifests:
        problems.add(K8S_FOLDER, "holds no manifests")
        return 0

    if kustomization is not None:
        file, document = kustomization
        listed = set(document.get("resources") or [])
        present = {os.path.basename(path) for path in files} - {os.path.basename(file)}
        for missing in sorted(listed - present):
            problems.add(file, f"resources: {missing} does not exist")
        for unlisted in sorted(present - listed):
            problems.add(file, f"resources: {unlisted} is not listed (kubectl apply -k would leave it out)")

    names: dict[str, set[str]] = {}
    for _, manifest in manifests:
        names.setdefault(str(manifest.get("kind")), set()).add(str((manifest.get("metadata") or {}).get("name")))

    for file, manifest in manifests:
        kind, api_version = manifest.get("kind"), manifest.get("apiVersion")
        label = f"{kind}/{(manifest.get('metadata') or {}).get('name')}"
        if not isinstance(kind, str) or not isinstance(api_version, str):
            problems.add(file, f"{label}: needs apiVersion and kind")
            continue
        validator = schemas.validator(kind, api_version)
        if validator is None:
            problems.add(file, f"{label}: no schema for {api_version} {kind} in Kubernetes {version}")
        else:
            for error in sorted(validator.iter_errors(manifest), key=lambda error: list(map(str, error.absolute_path))):
                problems.add(file, f"{label}: {json_path(error.absolute_path)}: {error.message} (Kubernetes {version} schema)")
        check_manifest_references(file, label, manifest, names, manifests, problems)
        if kind in {"ConfigMap", "Secret"}:
            for key in list((manifest.get("data") or {})) + list((manifest.get("stringData") or {})):
                check_setting_name(str(key), known, file, f"{label}: key", problems)
            if kind == "ConfigMap":
                listen = (manifest.get("data") or {}).get("CRMBET_LISTEN")
                if listen is not None and not listens_everywhere(str(listen)):
                    problems.add(file, f"{label}: CRMBET_LISTEN={listen} is unreachable from the kubelet and the Service; use 0.0.0.0:3000")
            if kind == "Secret":
                values = {**(manifest.get("data") or {}), **(manifest.get("stringData") or {})}
                if "CRMBET_JWT_SECRET" not in values and "CRMBET_JWT_KEY_FILE" not in values:
                    problems.add(file, f"{label}: no CRMBET_JWT_SECRET (or CRMBET_JWT_KEY_FILE): each replica would sign with a random key of its own and refuse the other's tokens")
        spec = pod_spec(manifest)
        if spec is not None:
            check_pod(file, label, kind, spec, image, command_line, known, problems)
    return len(manifests)


def check_manifest_references(file: str, label: str, manifest: dict[str, Any], names: dict[str, set[str]],
                              manifests: list[tuple[str, dict[str, Any]]], problems: Problems) -> None:
    def require(kind: str, name: Any, where: str) -> None:
        if name not in names.get(kind, set()):
            problems.add(file, f"{label}: {where} names {kind} {name}, which no manifest here defines")

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key in {"configMapRef", "configMapKeyRef"} and isinstance(item, dict) and not item.get("optional"):
                    require("ConfigMap", item.get("name"), f"{path}.{key}")
                elif key in {"secretRef", "secretKeyRef"} and isinstance(item, dict) and not item.get("optional"):
                    require("Secret", item.get("name"), f"{path}.{key}")
                elif key == "persistentVolumeClaim" and isinstance(item, dict):
                    require("PersistentVolumeClaim", item.get("claimName"), f"{path}.{key}")
                walk(item, f"{path}.{key}" if path else key)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, f"{path}[{index}]")

    walk(manifest.get("spec"), "spec")
    kind, spec = manifest.get("kind"), manifest.get("spec") or {}
    if kind == "HorizontalPodAutoscaler":
        target = spec.get("scaleTargetRef") or {}
        require(str(target.get("kind")), target.get("name"), "spec.scaleTargetRef")
    selector = None
    if kind == "Service":
        selector = spec.get("selector")
    elif kind == "PodDisruptionBudget":
        selector = (spec.get("selector") or {}).get("matchLabels")
    if selector:
        matched = [other for _, other in manifests
                   if pod_spec(other) is not None and other.get("kind") != "CronJob"
                   and all(pod_labels(other).get(key) == value for key, value in selector.items())]
        if not matched:
            problems.add(file, f"{label}: selector {selector} matches the pods of no workload here")
        if kind == "Service":
            for port in spec.get("ports") or []:
                target = port.get("targetPort", port.get("port"))
                for workload in matched:
                    container_ports = [p for c in (pod_spec(workload) or {}).get("containers", []) for p in c.get("ports", [])]
                    if not any(target in (p.get("name"), p.get("containerPort")) for p in container_ports):
                        problems.add(file, f"{label}: targetPort {target} is not a port of {workload.get('kind')}/{workload['metadata'].get('name')}")


def check_pod(file: str, label: str, kind: str, spec: dict[str, Any], image: Image, command_line: CommandLine,
              known: set[str], problems: Problems) -> None:
    pod_security = spec.get("securityContext") or {}
    for index, container in enumerate(spec.get("containers") or []):
        where = f"{label}: containers[{index}] ({container.get('name')})"
        for variable in container.get("env") or []:
            check_setting_name(str(variable.get("name")), known, file, f"{where}.env", problems)
        ports = {value for port in container.get("ports") or [] for value in (port.get("name"), port.get("containerPort"))}
        for probe_name in ("startupProbe", "readinessProbe", "livenessProbe"):
            probe = container.get(probe_name) or {}
            for action in ("grpc", "httpGet", "tcpSocket"):
                port = (probe.get(action) or {}).get("port")
                if port is not None and port not in ports:
                    problems.add(file, f"{where}.{probe_name}.{action}.port {port} is not a port of the container")
        image_name = str(container.get("image", "")).split("@")[0].rsplit(":", 1)[0]
        if os.path.basename(image_name) != "crmbet":
            continue
        command = container.get("command")
        if command is None or os.path.basename(str(command[0])) == "crmbet":
            arguments = [str(part) for part in (command or [])[1:]] + [str(part) for part in container.get("args") or image.command]
            subcommand = check_invocation(arguments, command_line, file, f"{where}.args", problems)
            if kind == "Deployment" and subcommand == "serve":
                for probe_name in ("readinessProbe", "livenessProbe"):
                    if "grpc" not in (container.get(probe_name) or {}):
                        problems.add(file, f"{where}.{probe_name}: probe the gRPC health service (grpc: {{port: 3000}})")
        security = container.get("securityContext") or {}
        if not (security.get("runAsNonRoot") or pod_security.get("runAsNonRoot")):
            problems.add(file, f"{where}: runAsNonRoot is not set (pod or container securityContext)")
        if security.get("readOnlyRootFilesystem") is not True:
            problems.add(file, f"{where}: securityContext.readOnlyRootFilesystem is not true")
        if security.get("allowPrivilegeEscalation") is not False:
            problems.add(file, f"{where}: securityContext.allowPrivilegeEscalation is not false")
        resources = container.get("resources") or {}
        for bound in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if resource not in (resources.get(bound) or {}):
                    problems.add(file, f"{where}: resources.{bound}.{resource} is not set")


# ---------------------------------------------------------------------------------------
# Railway
# ---------------------------------------------------------------------------------------

def check_railway(tree: Tree, problems: Problems) -> None:
    file = "railway.json"
    if not tree.exists(file):
        problems.add(file, "is missing")
        return
    try:
        config = json.loads(tree.read(file))
    except json.JSONDecodeError as error:
        problems.add(file, f"is not valid JSON: {error}")
        return
    if not isinstance(config, dict):
        problems.add(file, "is not a JSON object")
        return
    for section, keys in RAILWAY_KEYS.items():
        value = config if section == "" else config.get(section) or {}
        if not isinstance(value, dict):
            problems.add(file, f"{section} is not an object")
            continue
        for key in value:
            if key not in keys:
                suggestion = difflib.get_close_matches(key, sorted(keys), n=1)
                hint = f"; did you mean {suggestion[0]}?" if suggestion else ""
                problems.add(file, f"{section or '(top level)'}.{key} is not a Railway setting (Railway ignores it){hint}")
    build, deploy = config.get("build") or {}, config.get("deploy") or {}
    if str(build.get("builder", "")).upper() != "DOCKERFILE":
        problems.add(file, f"build.builder must be DOCKERFILE, got {build.get('builder')}")
    dockerfile = build.get("dockerfilePath")
    if dockerfile != DOCKERFILE:
        problems.add(file, f"build.dockerfilePath must be {DOCKERFILE} (the Dockerfile checked here), got {dockerfile}")
    elif not tree.exists(dockerfile):
        problems.add(file, f"build.dockerfilePath {dockerfile} does not exist")
    if deploy.get("healthcheckPath") != "/health":
        problems.add(file, f"deploy.healthcheckPath must be /health (200 while the database answers), got {deploy.get('healthcheckPath')}")
    restart = str(deploy.get("restartPolicyType", "ON_FAILURE")).upper()
    if restart not in {"NEVER", "ON_FAILURE", "ALWAYS"}:
        problems.add(file, f"deploy.restartPolicyType must be NEVER, ON_FAILURE or ALWAYS, got {restart}")
    for key in ("healthcheckTimeout", "restartPolicyMaxRetries", "numReplicas"):
        if key in deploy and not isinstance(deploy[key], int):
            problems.add(file, f"deploy.{key} must be a number, got {deploy[key]!r}")


# ---------------------------------------------------------------------------------------
# Everything, and the self-test
# ---------------------------------------------------------------------------------------

def validate(tree: Tree, version: str) -> tuple[Problems, list[str]]:
    problems = Problems()
    checked = []
    known = setting_names(tree, problems)
    command_line = read_command_line(tree, problems)
    image = check_dockerfile(tree, command_line, known, problems)
    checked.append(f"{DOCKERFILE} and .dockerignore")
    schema = compose_schema()
    for file in COMPOSE_FILES:
        if not tree.exists(file):
            problems.add(file, "is missing")
            continue
        check_compose(tree, file, schema, image, command_line, known, problems)
        checked.append(f"{file} (Compose specification)")
    count = check_kubernetes(tree, version, image, command_line, known, problems)
    checked.append(f"{count} Kubernetes manifests in {K8S_FOLDER}/ (schemas of Kubernetes {version}, strict)")
    check_railway(tree, problems)
    checked.append("railway.json")
    check_operations_doc(tree, known, problems)
    checked.append(f"{len(known)} settings of .env.example against {OPERATIONS_DOC}")
    return problems, checked


@dataclass
class Mistake:
    """A known mistake: in `file`, `old` (first occurrence) becomes `new`; a problem naming `expected` must follow."""

    what: str
    file: str
    old: str
    new: str
    expected: str


MISTAKES = [
    Mistake("compose: misspelled key", "deploy/docker-compose.yml",
            "    healthcheck:\n      test: [\"CMD\", \"pg_isready\"", "    healthchek:\n      test: [\"CMD\", \"pg_isready\"",
            "'healthchek' was unexpected"),
    Mistake("compose: wrong type", "deploy/docker-compose.yml",
            "    ports:\n      - \"3000:3000\"", "    ports: \"3000:3000\"", "is not of type 'array'"),
    Mistake("compose: setting name typo", "deploy/docker-compose.production.yml",
            "CRMBET_TRUSTED_PROXIES:", "CRMBET_TRUSTED_PROXY:", "did you mean CRMBET_TRUSTED_PROXIES"),
    Mistake("compose: production secret with a default", "deploy/docker-compose.production.yml",
            "${CRMBET_JWT_SECRET:?", "${CRMBET_JWT_SECRET:-an-insecure-default-of-thirty-two-bytes}${UNUSED:?",
            "a secret with a default"),
    Mistake("compose: servers do not wait for the migrations", "deploy/docker-compose.production.yml",
            "      migrate:\n        condition: service_completed_successfully",
            "      migrate:\n        condition: service_started", "condition must be service_completed_successfully"),
    Mistake("compose: listening on loopback", "deploy/docker-compose.yml",
            "  CRMBET_LISTEN: 0.0.0.0:3000", "  CRMBET_LISTEN: 127.0.0.1:3000", "unreachable from outside the container"),
    Mistake("compose: unknown subcommand", "deploy/docker-compose.production.yml",
            'command: ["migrate", "up"]', 'command: ["migrate", "upp"]', "`crmbet migrate upp` is not a command"),
    Mistake("compose: missing bind-mounted file", "deploy/docker-compose.production.yml",
            "./Caddyfile:", "./Caddyfile.missing:", "Caddyfile.missing does not exist"),
    Mistake("kubernetes: misspelled key", "deploy/k8s/deployment.yaml",
            "readinessProbe:", "readinessProbes:", "'readinessProbes' was unexpected"),
    Mistake("kubernetes: wrong type", "deploy/k8s/deployment.yaml",
            "            grpc:\n              port: 3000", "            grpc:\n              port: \"3000\"",
            "'3000' is not of type 'integer'"),
    Mistake("kubernetes: YAML syntax", "deploy/k8s/hpa.yaml",
            "  minReplicas: 2", "  minReplicas: [2", "is not valid YAML"),
    Mistake("kubernetes: unknown Secret", "deploy/k8s/deployment.yaml",
            "            - secretRef:\n                name: crmbet", "            - secretRef:\n                name: crmbet-secrets",
            "names Secret crmbet-secrets"),
    Mistake("kubernetes: unknown flag", "deploy/k8s/etl-cronjob.yaml",
            '"--lake"', '"--lakes"', "has no flag --lakes"),
    Mistake("kubernetes: unknown subcommand", "deploy/k8s/train-cronjob.yaml",
            'args: ["train"', 'args: ["trian"', "`crmbet trian` is not a subcommand"),
    Mistake("kubernetes: setting name typo", "deploy/k8s/configmap.yaml",
            "CRMBET_SHUTDOWN_GRACE_SECONDS:", "CRMBET_SHUTDOWN_GRACE_SECS:", "did you mean CRMBET_SHUTDOWN_GRACE_SECONDS"),
    Mistake("kubernetes: writable root filesystem", "deploy/k8s/deployment.yaml",
            "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "readOnlyRootFilesystem is not true"),
    Mistake("kubernetes: manifest left out of the kustomization", "deploy/k8s/kustomization.yaml",
            "  - pdb.yaml\n", "", "pdb.yaml is not listed"),
    Mistake("kubernetes: probe on a port the container does not open", "deploy/k8s/deployment.yaml",
            "              containerPort: 3000", "              containerPort: 3001", "is not a port of the container"),
    Mistake("Dockerfile: missing COPY source", DOCKERFILE,
            "COPY third_party third_party", "COPY third-party third_party", "third-party does not exist"),
    Mistake("Dockerfile: unknown subcommand", DOCKERFILE, 'CMD ["serve"]', 'CMD ["server"]',
            "`crmbet server` is not a subcommand"),
    Mistake("Dockerfile: runs as root", DOCKERFILE, "USER 10001:10001", "USER root", "runs as root"),
    Mistake("Dockerfile: no dashboard", DOCKERFILE,
            "COPY --from=dashboard /src/web-client/dist web-client/dist\n", "", "the image would serve no dashboard"),
    Mistake(".dockerignore: a COPY source excluded", ".dockerignore", ".git\n", ".git\nproto\n",
            "COPY source proto is excluded by .dockerignore"),
    Mistake("railway.json: wrong Dockerfile", "railway.json",
            '"deploy/Dockerfile"', '"deploy/Dockerfile.missing"', "build.dockerfilePath must be deploy/Dockerfile"),
    Mistake("railway.json: misspelled key", "railway.json",
            '"healthcheckPath"', '"healthCheckPath"', "did you mean healthcheckPath"),
    Mistake("docs: a setting without a row", OPERATIONS_DOC,
            "| `CRMBET_HOLDOUT_SEED` |", "| `CRMBET_HOLDOUT` |", "no row for CRMBET_HOLDOUT_SEED"),
]


def self_test(tree: Tree, version: str) -> int:
    baseline, _ = validate(tree, version)
    if baseline.found:
        print("self-test: the files as committed have problems; fix those first:")
        report(baseline)
        return 1
    failures = 0
    for mistake in MISTAKES:
        original = tree.read(mistake.file)
        if mistake.old not in original:
            print(f"  STALE  {mistake.what}: {mistake.file} no longer contains {mistake.old!r}; update MISTAKES in tests/deploy/validate.py")
            failures += 1
            continue
        broken = Tree(tree.root, {mistake.file: original.replace(mistake.old, mistake.new, 1)})
        problems, _ = validate(broken, version)
        caught = [f"{file}: {message}" for file, message in problems.found if mistake.expected in message]
        if caught:
            print(f"  caught  {mistake.what}: {caught[0]}")
        else:
            failures += 1
            print(f"  MISSED  {mistake.what} in {mistake.file}: no problem mentions {mistake.expected!r}; reported: {problems.found}")
    print(f"self-test: {len(MISTAKES) - failures} of {len(MISTAKES)} known mistakes caught")
    return 1 if failures else 0


def report(problems: Problems) -> None:
    for file, message in problems.found:
        print(f"  {file}: {message}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[2],
                        help="the repository (default: the one holding this script)")
    parser.add_argument("--kubernetes-version", default=KUBERNETES_VERSION,
                        help=f"Kubernetes version of the schemas (default {KUBERNETES_VERSION})")
    parser.add_argument("--self-test", action="store_true",
                        help="check that known mistakes in the files are each reported")
    arguments = parser.parse_args()
    tree = Tree(arguments.root.resolve())
    if arguments.self_test:
        return self_test(tree, arguments.kubernetes_version)
    problems, checked = validate(tree, arguments.kubernetes_version)
    for item in checked:
        print(f"  checked {item}")
    if problems.found:
        print(f"{len(problems.found)} problem(s) in the deploy files:")
        report(problems)
        return 1
    print("deploy files: no problems")
    return 0


if __name__ == "__main__":
    sys.exit(main())
