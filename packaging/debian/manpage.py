#!/usr/bin/env python3
"""A section 1 man page (man(7) macros) from a command's `--experimental-dump-help` JSON.

    manpage.py TOOL.json --version VERSION --date YYYY-MM-DD > TOOL.1

The text is the argument parser's own (abstracts, discussions, option help), so the page
can't drift from `--help`: scripts/build-deb.sh runs this on the binary it packages.
One page per tool; subcommands are sections of it.
"""
import argparse
import json
import re
import sys


def escape(text):
    """Text for roff: backslashes, hyphens as \\-, and no line starting with a control character."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    # Non-ASCII as groff's Unicode escapes, so the page needs no input encoding.
    text = "".join(ch if ord(ch) < 128 else "\\[u%04X]" % ord(ch) for ch in text)
    lines = []
    for line in text.split("\n"):
        if line.startswith((".", "'")):
            line = "\\&" + line
        lines.append(line)
    return "\n".join(lines)


def paragraphs(text):
    """A discussion as roff paragraphs: blank lines separate them; runs of indented lines
    (examples) are kept as typed."""
    out = []
    for block in re.split(r"\n\s*\n", text.strip()):
        prose, example = [], []
        for line in block.split("\n") + [None]:
            if line is not None and line.startswith("  "):
                if prose:
                    out += [".PP", escape(" ".join(prose))]
                    prose = []
                example.append(line[2:])
                continue
            if example:
                out += [".PP", ".RS 4", ".EX", escape("\n".join(example)), ".EE", ".RE"]
                example = []
            if line is not None and line.strip():
                prose.append(line.strip())
        if prose:
            out += [".PP", escape(" ".join(prose))]
    return out


def name_of(name):
    prefix = {"long": "--", "short": "-", "longWithSingleDash": "-"}[name["kind"]]
    return prefix + name["name"]


def synopsis_word(argument):
    """One argument as the usage line shows it: [--policy <policy>], <cases> ..., [--quiet]."""
    value = argument.get("valueName") or "value"
    if argument["kind"] == "positional":
        word = "\\fI" + escape(value) + "\\fP"
        if argument.get("parsingStrategy") == "postTerminator":
            word = "\\-\\- " + word
    else:
        name = argument.get("preferredName") or argument["names"][0]
        word = "\\fB" + escape(name_of(name)) + "\\fP"
        if argument["kind"] == "option":
            word += " \\fI" + escape(value) + "\\fP"
    if argument.get("isRepeating"):
        word += " ..."
    if argument.get("isOptional"):
        word = "[" + word + "]"
    return word


def argument_entry(argument):
    """One .TP entry: the names (and value), then the help and its default."""
    value = argument.get("valueName") or "value"
    if argument["kind"] == "positional":
        head = "\\fI" + escape(value) + "\\fP"
        if argument.get("isRepeating"):
            head += " ..."
    else:
        names = ", ".join("\\fB" + escape(name_of(name)) + "\\fP" for name in argument.get("names", []))
        head = names + (" \\fI" + escape(value) + "\\fP" if argument["kind"] == "option" else "")
    body = []
    abstract = argument.get("abstract") or ""
    default = argument.get("defaultValue")
    if default and argument["kind"] == "option":
        abstract = (abstract + " " if abstract else "") + "(default: " + default + ")"
    if abstract:
        body.append(escape(abstract))
    values = argument.get("allValueDescriptions")
    if values:
        for key in argument.get("allValues") or sorted(values):
            body += [".RS", ".TP", "\\fB" + escape(key) + "\\fP", escape(values.get(key, "")), ".RE"]
    if argument.get("discussion"):
        # Indented like the help above it: .IP instead of .PP.
        body += [".IP" if line == ".PP" else line for line in paragraphs(argument["discussion"])]
    return [".TP", head] + (body or [""])


def visible(arguments, top=True):
    """The arguments --help shows; --help and --version only for the program itself."""
    common = ("help", "version")
    return [a for a in arguments or [] if a.get("shouldDisplay", True)
            and (top or (a.get("preferredName") or {}).get("name") not in common)]


def command_lines(command, path, top):
    """The synopsis, description and options of one command, then its subcommands."""
    lines = []
    arguments = visible(command.get("arguments"), top)
    invocation = " ".join(path)
    if not top:
        lines += [".SS \\fB" + escape(invocation) + "\\fP"]
        if command.get("abstract"):
            lines += [escape(command["abstract"])]
    usage = ".B " + escape(invocation)
    words = [synopsis_word(a) for a in arguments if a["kind"] != "positional"]
    words += [synopsis_word(a) for a in arguments if a["kind"] == "positional"]
    if not top and (words or not subcommands(command)):
        lines += [".PP", usage + ("\n" + " ".join(words) if words else "")]
    if command.get("discussion"):
        lines += paragraphs(command["discussion"])
    if arguments:
        if not top:
            lines += [".PP", "Options and arguments:"]
        for argument in arguments:
            lines += argument_entry(argument)
    return lines


def subcommands(command):
    return [s for s in command.get("subcommands") or [] if s.get("shouldDisplay", True)
            and s["commandName"] != "help"]


def synopsis(command, path):
    """SYNOPSIS lines: the command's own usage, then one per subcommand (recursively)."""
    arguments = visible(command.get("arguments"), len(path) == 1)
    words = [synopsis_word(a) for a in arguments if a["kind"] != "positional"]
    words += [synopsis_word(a) for a in arguments if a["kind"] == "positional"]
    subs = subcommands(command)
    lines = []
    if arguments or not subs:
        lines += [".B " + escape(" ".join(path)), " ".join(words), ".br"]
    for sub in subs:
        lines += synopsis(sub, path + [sub["commandName"]])
    return lines


def walk(command, path):
    """Every subcommand, depth first, with its path."""
    for sub in subcommands(command):
        yield sub, path + [sub["commandName"]]
        yield from walk(sub, path + [sub["commandName"]])


def page(tool, version, date):
    command = tool["command"]
    name = command["commandName"]
    out = [
        '.\\" Generated by packaging/debian/manpage.py from `' + name + ' --experimental-dump-help`.',
        ".TH " + escape(name.upper()) + " 1 " + date + ' "AgentGate ' + escape(version) + '" "User Commands"',
        ".nh",
        ".ad l",
        ".SH NAME",
        escape(name) + " \\- " + escape((command.get("abstract") or name).rstrip(".")),
        ".SH SYNOPSIS",
    ]
    out += synopsis(command, [name])
    out += [".SH DESCRIPTION"]
    if command.get("discussion"):
        out += paragraphs(command["discussion"])
    else:
        out += [escape(command.get("abstract") or name)]
    arguments = visible(command.get("arguments"))
    if arguments:
        out += [".SH OPTIONS"]
        for argument in arguments:
            out += argument_entry(argument)
    subs = list(walk(command, [name]))
    if subs:
        out += [".SH COMMANDS"]
        for sub, path in subs:
            out += command_lines(sub, path, top=False)
    see_also = {"agentgate": "agentgate\\-supervise (1),", "agentgate-supervise": "agentgate (1),"}.get(name, "")
    out += [".SH SEE ALSO"]
    for reference in (see_also, "agentgate\\-policy (5),"):
        if reference:
            page_name, section = reference.split(" ")
            out += [".BR " + page_name + " " + section]
    out += [".I /usr/share/doc/agentgate/README.md"]
    return "\n".join(out) + "\n"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("json")
    parser.add_argument("--version", required=True)
    parser.add_argument("--date", required=True)
    options = parser.parse_args()
    with open(options.json) as handle:
        tool = json.load(handle)
    sys.stdout.write(page(tool, options.version, options.date))


if __name__ == "__main__":
    main()
