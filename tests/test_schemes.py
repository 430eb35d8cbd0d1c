"""The shipped Schemes (4.0/5.0), Schedules (3.1) and GUI job, checked against real RELION files,
and the ``install-scheme`` command.
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import starfile

from occupy_relion.cli import parse_options
from occupy_relion.relion import schemes
from occupy_relion.relion.summary import CLASSES_BLOCK, SUMMARY_NAME, class_row, region_block, region_tables

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10 (requires-python): the same parser as the tomli package (the test extra installs it)
    import tomli as tomllib

REPOSITORY = Path(__file__).resolve().parents[1]
SHIPPED = REPOSITORY / "schemes"
SCHEME_NAMES = ("occupy_class3d", "occupy_select", "occupy_focus")
REAL_JOB_DATA = REPOSITORY / "tests" / "data" / "relion_jobs"

#: RELION's job types in 3.1 (integers) and 4.0/5.0 (labels) for the jobs our schemes use, by job name
JOB_TYPES = {"class3d": (9, "relion.class3d"), "occupy": (99, "relion.external"), "select": (7, "relion.select"),
             "occupy_input": (99, "relion.external"), "subtraction": (14, "relion.subtract"),
             "focus3d": (9, "relion.class3d"), "occupy_focused": (99, "relion.external"),
             "revert": (14, "relion.subtract")}
#: RELION evaluates a number typed as input2 as 0 (only variables are read), so inputs must be variables
NUMERIC_INPUT2 = {"bool=ge", "bool=gt", "bool=le", "bool=lt", "bool=eq", "float=star_table_sort_idx",
                  "string=nth_word", "float=plus", "float=minus", "float=mult", "float=divide"}


def read(path: Path) -> dict:
    return starfile.read(path, always_dict=True)


def loop(tables: dict, name: str) -> pd.DataFrame:
    table = tables.get(name)
    return table if isinstance(table, pd.DataFrame) else pd.DataFrame()


def job_options(path: Path) -> dict[str, str]:
    values = read(path)["joboptions_values"]
    return {str(k): ("" if pd.isna(v) else str(v))
            for k, v in zip(values["rlnJobOptionVariable"], values["rlnJobOptionValue"])}


def scheme_dirs() -> list[tuple[str, Path, str]]:
    """(name, directory, prefix) of every shipped Scheme and Schedule; prefix 'scheme' or 'schedule'."""
    found = [(name, SHIPPED / name, "scheme") for name in SCHEME_NAMES]
    found += [(name, SHIPPED / "Schedules" / name, "schedule") for name in SCHEME_NAMES]
    return found


def description(directory: Path, prefix: str) -> dict:
    return read(directory / f"{prefix}.star")


def column(tables: dict, prefix: str, table: str, label: str) -> list[str]:
    frame = loop(tables, f"{prefix}_{table}")
    capital = prefix.capitalize()
    return [str(value) for value in frame.get(f"rln{capital}{label}", [])]


def start_node(tables: dict, prefix: str) -> str:
    """Where the schemer starts: the first edge's input node (RELION's rule when the current node is undefined)."""
    return str(loop(tables, f"{prefix}_edges")[f"rln{prefix.capitalize()}EdgeInputNodeName"].iloc[0])


def variables(tables: dict, prefix: str) -> dict[str, set[str]]:
    return {kind: set(column(tables, prefix, f"{kind}s", f"{label}VariableName"))
            for kind, label in (("float", "Float"), ("bool", "Boolean"), ("string", "String"))}


# ---------------------------------------------------------------------------------------------- format


def labels_of(tables: dict) -> dict[str, set[str]]:
    return {name: set(table.keys() if isinstance(table, dict) else table.columns) for name, table in tables.items()}


@pytest.mark.parametrize("name", SCHEME_NAMES)
def test_scheme_tables_and_labels_are_those_relion5_writes(name, shared_relion):
    ours = labels_of(description(SHIPPED / name, "scheme"))
    real = labels_of(read(shared_relion / "relion50_project/Schemes/class3d_ext/scheme.star"))
    real.update({k: v for k, v in labels_of(read(shared_relion / "relion50_upstream_schemes/proc/scheme.star")).items()
                 if k not in real})
    assert set(ours) <= set(real), set(ours) - set(real)
    for table, labels in ours.items():
        assert labels == real[table], (table, labels ^ real[table])


@pytest.mark.parametrize("name", SCHEME_NAMES)
def test_schedule_tables_and_labels_are_those_relion31_writes(name, shared_relion):
    ours = labels_of(description(SHIPPED / "Schedules" / name, "schedule"))
    real = labels_of(read(shared_relion / "relion31_project/Schedules/c3d_ext/schedule.star"))
    scheme = labels_of(description(SHIPPED / name, "scheme"))
    for table, labels in ours.items():
        if table in real:
            assert labels == real[table], (table, labels ^ real[table])
        # the tables 3.1 did not write in that example: same labels as 5.0 with Schedule for Scheme
        renamed = {label.replace("Schedule", "Scheme") for label in labels}
        assert renamed == scheme[table.replace("schedule", "scheme")], table


@pytest.mark.parametrize("name, directory, prefix", scheme_dirs())
def test_every_job_is_new_and_not_started_with_its_job_star(name, directory, prefix):
    tables = description(directory, prefix)
    general = tables[f"{prefix}_general"]
    folder = "Schemes" if prefix == "scheme" else "Schedules"
    assert general[f"rln{prefix.capitalize()}Name"] == f"{folder}/{name}/"
    jobs = loop(tables, f"{prefix}_jobs")
    capital = prefix.capitalize()
    assert len(jobs) >= 2
    assert list(jobs[f"rln{capital}JobNameOriginal"]) == list(jobs[f"rln{capital}JobName"])
    assert set(jobs[f"rln{capital}JobMode"]) == {"new"}  # docs/relion.md §5: anything else stops the scheme
    assert set(jobs[f"rln{capital}JobHasStarted"]) == {0}
    for job in jobs[f"rln{capital}JobName"]:
        header = read(directory / job / "job.star")["job"]
        integer, label = JOB_TYPES[job]
        if prefix == "scheme":
            assert header["rlnJobTypeLabel"] == label
        else:
            assert int(header["rlnJobType"]) == integer
        assert int(header["rlnJobIsContinue"]) == 0
    assert general[f"rln{capital}CurrentNodeName"] == start_node(tables, prefix)


@pytest.mark.parametrize("name, directory, prefix", scheme_dirs())
def test_graph_operators_and_variables_are_consistent(name, directory, prefix):
    tables = description(directory, prefix)
    declared = variables(tables, prefix)
    every_variable = set().union(*declared.values())
    operators = loop(tables, f"{prefix}_operators")
    capital = prefix.capitalize()
    operator_names = set(operators[f"rln{capital}OperatorName"])
    jobs = set(column(tables, prefix, "jobs", "JobName"))
    nodes = operator_names | jobs
    for _, row in operators.iterrows():
        kind, output = row[f"rln{capital}OperatorType"], row[f"rln{capital}OperatorOutput"]
        inputs = (row[f"rln{capital}OperatorInput1"], row[f"rln{capital}OperatorInput2"])
        if kind == "exit":
            continue
        result = kind.split("=")[0]
        assert output in declared[result], (kind, output)
        reads_a_file = "read_star" in kind or "star_table" in kind
        if kind in ("string=glob", "float=count_words", "string=nth_word") or reads_a_file:
            assert inputs[0] in declared["string"], (kind, inputs)
        if kind in NUMERIC_INPUT2:
            assert inputs[1] in declared["float"], (kind, inputs)  # a literal would be read as 0
        if kind == "bool=and":
            assert set(inputs) <= declared["bool"]
    edges = loop(tables, f"{prefix}_edges")
    for _, edge in edges.iterrows():
        assert edge[f"rln{capital}EdgeInputNodeName"] in nodes
        assert edge[f"rln{capital}EdgeOutputNodeName"] in nodes
        if int(edge[f"rln{capital}EdgeIsFork"]):
            assert edge[f"rln{capital}EdgeOutputNodeNameIfTrue"] in nodes
            assert edge[f"rln{capital}EdgeBooleanVariable"] in declared["bool"]
    # every node is reached from the start, and every path ends at EXIT
    successors: dict[str, set[str]] = {}
    for _, edge in edges.iterrows():
        targets = {edge[f"rln{capital}EdgeOutputNodeName"]}
        if int(edge[f"rln{capital}EdgeIsFork"]):
            targets.add(edge[f"rln{capital}EdgeOutputNodeNameIfTrue"])
        successors.setdefault(edge[f"rln{capital}EdgeInputNodeName"], set()).update(targets)
    reached, todo = set(), [start_node(tables, prefix)]
    while todo:
        node = todo.pop()
        if node not in reached:
            reached.add(node)
            todo.extend(successors.get(node, ()))
    assert reached == nodes
    exits = set(operators.loc[operators[f"rln{capital}OperatorType"] == "exit", f"rln{capital}OperatorName"])
    assert "EXIT" in exits and set(successors) == nodes - exits
    # $$variables in the jobs are declared; booleans only in Yes/No options
    for job in jobs:
        for option, value in job_options(directory / job / "job.star").items():
            for used in re.findall(r"\$\$(\S+)", value):
                assert used in every_variable, (job, option, used)
                if used in declared["bool"]:
                    assert option in ("do_ctf_correction", "use_gpu", "do_center_mask"), option
    # the first job's outputs are found from the scheme's own directory name
    strings = dict(zip(column(tables, prefix, "strings", "StringVariableName"),
                       column(tables, prefix, "strings", "StringVariableValue")))
    folder = "Schemes" if prefix == "scheme" else "Schedules"
    if "class3d" in jobs:
        assert strings["class3d_output"] == f"{folder}/{name}/class3d/run_it*_data.star"


@pytest.mark.parametrize("name", SCHEME_NAMES)
def test_schedule_is_the_scheme_in_relion31_words(name):
    scheme = description(SHIPPED / name, "scheme")
    schedule = description(SHIPPED / "Schedules" / name, "schedule")
    for table in ("floats", "bools", "strings", "operators", "jobs", "edges"):
        ours = loop(schedule, f"schedule_{table}").rename(columns=lambda c: c.replace("Schedule", "Scheme"))
        theirs = loop(scheme, f"scheme_{table}").astype(str).replace(r"Schemes/", "Schedules/", regex=True)
        pd.testing.assert_frame_equal(ours.astype(str), theirs, check_dtype=False)
    for job in loop(scheme, "scheme_jobs")["rlnSchemeJobName"]:
        if (SHIPPED / name / job).is_dir():
            new = job_options(SHIPPED / name / job / "job.star")
            old = job_options(SHIPPED / "Schedules" / name / job / "job.star")
            shared = set(new) & set(old)
            assert {k: new[k] for k in shared} == {k: old[k] for k in shared}, job
    pipeline = read(SHIPPED / "Schedules" / name / "schedule_pipeline.star")["pipeline_processes"]
    listed = dict(zip(pipeline["rlnPipeLineProcessName"], pipeline["rlnPipeLineProcessType"]))
    jobs = set(loop(schedule, "schedule_jobs")["rlnScheduleJobName"])
    assert listed == {f"Schedules/{name}/{job}/": JOB_TYPES[job][0] for job in jobs}


def test_both_schemes_share_the_same_class3d_and_occupy_jobs():
    for folder in ("", "Schedules/"):
        for job in ("class3d", "occupy"):
            first = (SHIPPED / f"{folder}occupy_class3d" / job / "job.star").read_text()
            assert first == (SHIPPED / f"{folder}occupy_select" / job / "job.star").read_text()


REAL_JOBS_5 = {"class3d": "relion50_project/Class3D/job003/job.star",
               "occupy": "relion50_project/External/job004/job.star",
               "select": "relion50_upstream_schemes/proc/select_parts/job.star",
               "occupy_input": "relion50_project/External/job004/job.star",
               "occupy_focused": "relion50_project/External/job004/job.star",
               "subtraction": REAL_JOB_DATA / "subtract_50.star", "revert": REAL_JOB_DATA / "subtract_revert_50.star",
               "focus3d": REAL_JOB_DATA / "class3d_50.star"}
REAL_JOBS_31 = {"class3d": "relion31_project/Class3D/job003/job.star",
                "occupy": "relion31_project/Schedules/c3d_ext/external/job.star",
                "occupy_input": "relion31_project/Schedules/c3d_ext/external/job.star",
                "occupy_focused": "relion31_project/Schedules/c3d_ext/external/job.star",
                "select": REAL_JOB_DATA / "select_31.star",
                "subtraction": REAL_JOB_DATA / "subtract_31.star", "revert": REAL_JOB_DATA / "subtract_revert_31.star",
                "focus3d": REAL_JOB_DATA / "class3d_31.star"}


@pytest.mark.parametrize("name", SCHEME_NAMES)
def test_job_options_exist_in_real_relion_jobs(name, shared_relion):
    for job, real in REAL_JOBS_5.items():
        path = SHIPPED / name / job / "job.star"
        if path.exists():
            unknown = set(job_options(path)) - set(job_options(shared_relion / real))
            assert not unknown, (job, unknown)
    for job, real in REAL_JOBS_31.items():
        path = SHIPPED / "Schedules" / name / job / "job.star"
        if path.exists():
            unknown = set(job_options(path)) - set(job_options(shared_relion / real))
            assert not unknown, (job, unknown)


def relion_command(options: dict[str, str], input_part: str) -> list[str]:
    """The command line RELION builds for an External job (docs/relion.md §1), without the executable:
    the parameters, then the Running tab's threads and Additional arguments."""
    words = ["--o", "External/job009/", "--in_parts", input_part]
    for number in range(1, 11):
        label = options.get(f"param{number}_label", "")
        if label and label != '""':
            value = options.get(f"param{number}_value", "")
            words += [f"--{label}"] + (shlex.split(value) if value and value != '""' else [])
    other = options.get("other_args", "")
    return words + ["--j", "2"] + (shlex.split(other) if other and other != '""' else [])


def test_gui_job_star_gives_a_command_line_our_program_accepts(shared_relion):
    path = SHIPPED / "external" / "job.star"
    header = read(path)["job"]
    assert header["rlnJobTypeLabel"] == "relion.external" and int(header["rlnJobType"]) == 99  # 3.1 to 5.0
    options = job_options(path)
    assert options["fn_exe"] == schemes.SHIPPED_EXECUTABLE
    assert set(options) <= set(job_options(shared_relion / REAL_JOBS_5["occupy"]))
    parsed = parse_options(relion_command(options, "Class3D/job003/run_it025_data.star"))
    assert parsed.ignored == ()
    assert parsed.mode == "occupancy" and parsed.joint is False and parsed.exclude_solvent is False
    assert parsed.amplify == float("inf") and parsed.lowpass is None and parsed.threads == 2
    assert parsed.mask_extend is None and parsed.mask_soft_edge is None  # empty: the defaults
    defaults = parse_options(["--o", "External/job009/"])
    # Additional arguments show them
    assert (parsed.pivot, parsed.scale_limit, parsed.max_gain, parsed.region_difference) == (
        defaults.pivot, defaults.scale_limit, defaults.max_gain, defaults.region_difference)


#: about as many characters of a parameter's label as the RELION GUI shows ("exclude_solvent" shows as
#: "clude_solvent")
GUI_LABEL_CHARACTERS = 12


def test_gui_job_uses_every_slot_with_labels_the_gui_shows_whole():
    options = job_options(SHIPPED / "external" / "job.star")
    labels = [options[f"param{n}_label"] for n in range(1, 11)]
    assert all(label and label != '""' for label in labels)
    assert all(len(label) <= GUI_LABEL_CHARACTERS for label in labels), labels
    assert {"mask_extend", "mask_edge", "no_solvent", "joint"} <= set(labels)


def test_gui_job_threads_default_is_the_command_lines():
    """The GUI form starts with the thread count the command line uses when --j is not given."""
    default = parse_options(["--o", "External/job009/", "--in_parts", "Class3D/job003/run_it025_data.star"])
    assert int(job_options(SHIPPED / "external" / "job.star")["nr_threads"]) == default.threads


@pytest.mark.parametrize("name", ["occupy_class3d", "occupy_select"])
def test_scheme_external_job_parameters_are_ours(name):
    options = job_options(SHIPPED / name / "occupy" / "job.star")
    options = {k: v.replace("$$amplify", "inf") for k, v in options.items()}
    parsed = parse_options(relion_command(options, "Class3D/job003/run_it025_data.star"))
    assert parsed.ignored == () and parsed.amplify == float("inf")
    assert options["in_part"] == "$$last_data"


def dirs_of(name: str) -> list[tuple[Path, str, str]]:
    """(directory, prefix, folder) of a shipped Scheme and its Schedule."""
    return [(SHIPPED / name, "scheme", "Schemes"), (SHIPPED / "Schedules" / name, "schedule", "Schedules")]


def _joined(strings: dict[str, str], operators: dict, variable: str) -> str:
    """A string variable's value after the Scheme's string=join operators that make it (in graph order)."""
    for kind, output, first, second in operators.values():
        if kind == "string=join" and output == variable:
            return _joined(strings, operators, first) + _joined(strings, operators, second)
    return strings[variable]


@pytest.mark.parametrize("directory, prefix, folder", dirs_of("occupy_select"))
def test_deciding_scheme_reads_labels_our_summary_writes(directory, prefix, folder, class_result):
    """It reads file,table,label triples joined from the summary file, the chosen table (the classes:
    completeness; a region's table: its occupancy) and a label RELION knows."""
    tables = description(directory, prefix)
    strings, operators = strings_of(tables, prefix), operators_of(tables, prefix)
    assert strings["select_table"] == CLASSES_BLOCK
    row = class_row(class_result)
    readers = {name: op for name, op in operators.items() if "read_star" in op[0] or "star_table" in op[0]}
    assert set(readers) == {"SORT_by_occupancy", "READ_class", "READ_occupancy", "READ_fraction"}
    for _kind, _output, first, _second in readers.values():
        file, table, label = _joined(strings, operators, first).split(",")
        assert file == f"{folder}/occupy_select/occupy/{SUMMARY_NAME}"
        assert table == CLASSES_BLOCK
        assert label in row and label.startswith("rln")  # a label RELION knows, so operators can read it
    assert _joined(strings, operators, operators["SORT_by_occupancy"][2]).endswith(",rlnAverageValue")
    # choosing a region's table reads the same labels there
    region = dict(strings, select_table=region_block(1))
    for _kind, _output, first, _second in readers.values():
        assert _joined(region, operators, first).split(",")[1] == "occupancy_region001"


def test_region_tables_have_the_labels_the_deciding_scheme_reads(tmp_path):
    """A region's own table in occupancy.star: class number, distribution and the region's occupancy
    under RELION's labels, one row per class."""
    from occupy_relion.regions import ClassCompleteness, Region, RegionAnalysis, RegionParameters

    region = Region(1, 10, 5, 100.0, (1.0, 2.0, 3.0), (1, 2), (0.9, 0.1), "absent in class 2; full in class 1")
    analysis = RegionAnalysis((1, 2), (4, 4, 4), (1.0, 1.0, 1.0), np.zeros((4, 4, 4), bool),
                              np.zeros((4, 4, 4), np.int16), (region,),
                              (ClassCompleteness(1, 0.95, 1, 0, 1), ClassCompleteness(2, 0.7, 1, 0.3, 2)), 1.0, 500.0,
                              RegionParameters().resolved(8.0))
    classes = [{"rlnClassNumber": 1, "rlnReferenceImage": "a.mrc", "rlnClassDistribution": 0.5},
               {"rlnClassNumber": 2, "rlnReferenceImage": "b.mrc", "rlnClassDistribution": 0.5}]
    (table,) = region_tables(analysis, ("External/job002/region001_mask.mrc",), classes).values()
    assert list(table["rlnClassNumber"]) == [1, 2] and list(table["rlnAverageValue"]) == [0.9, 0.1]
    assert {"rlnClassDistribution", "rlnMaskName"} <= set(table.columns)


# ---------------------------------------------------------------------------------- occupy_focus graph

FOCUS = "occupy_focus"


def focus_dirs() -> list[tuple[Path, str, str]]:
    """(directory, prefix, folder) of the occupy_focus Scheme and Schedule."""
    return [(SHIPPED / FOCUS, "scheme", "Schemes"), (SHIPPED / "Schedules" / FOCUS, "schedule", "Schedules")]


def strings_of(tables: dict, prefix: str) -> dict[str, str]:
    return dict(zip(column(tables, prefix, "strings", "StringVariableName"),
                    column(tables, prefix, "strings", "StringVariableValue")))


def operators_of(tables: dict, prefix: str) -> dict[str, tuple[str, str, str, str]]:
    """operator name -> (type, output, input1, input2)."""
    frame, capital = loop(tables, f"{prefix}_operators"), prefix.capitalize()
    return {row[f"rln{capital}OperatorName"]: (row[f"rln{capital}OperatorType"], row[f"rln{capital}OperatorOutput"],
                                                row[f"rln{capital}OperatorInput1"], row[f"rln{capital}OperatorInput2"])
            for _, row in frame.iterrows()}


def edges_of(tables: dict, prefix: str) -> dict[str, tuple[str, str | None, str | None]]:
    """node -> (next node, or the node if false; node if true or None; boolean variable or None)."""
    frame, capital = loop(tables, f"{prefix}_edges"), prefix.capitalize()
    found = {}
    for _, edge in frame.iterrows():
        fork = bool(int(edge[f"rln{capital}EdgeIsFork"]))
        found[edge[f"rln{capital}EdgeInputNodeName"]] = (
            edge[f"rln{capital}EdgeOutputNodeName"], edge[f"rln{capital}EdgeOutputNodeNameIfTrue"] if fork else None,
            edge[f"rln{capital}EdgeBooleanVariable"] if fork else None)
    return found


def before_last(text: str, token: str) -> str:
    """RELION's FileName::beforeLastOf: the whole string when the token is absent."""
    return text[:text.rfind(token)] if token in text else text


@pytest.mark.parametrize("directory, prefix, folder", focus_dirs())
@pytest.mark.parametrize("input_data, optimiser", [
    ("Class3D/job008/run_it025_data.star", "Class3D/job008/run_it025_optimiser.star"),
    ("Class3D/job008/run_ct25_it030_data.star", "Class3D/job008/run_ct25_it030_optimiser.star"),
    ("Refine3D/job010/run_data.star", "Refine3D/job010/run_optimiser.star"),  # a consensus refinement (4.0/5.0)
    ("Refine3D/job010/run_it020_data.star", "Refine3D/job010/run_it020_optimiser.star"),  # 3.1: its last iteration
    ("Import/job001/particles.star", "Import/job001/particles.staroptimiser.star"),  # not found: the scheme stops
])
def test_focus_derives_the_optimiser_of_the_input_iteration(directory, prefix, folder, input_data, optimiser):
    tables = description(directory, prefix)
    strings, operators = strings_of(tables, prefix), operators_of(tables, prefix)
    kind, output, first, second = operators["ROOT_of_input_data"]
    assert (kind, output, first) == ("string=before_last", "input_root", "input_data")
    root = before_last(input_data, strings[second])
    kind, output, first, second = operators["NAME_optimiser"]
    assert (kind, output, first) == ("string=join", "input_optimiser", "input_root")
    assert root + strings[second] == optimiser
    assert job_options(directory / "subtraction" / "job.star")["fn_opt"] == "$$input_optimiser"


@pytest.mark.parametrize("directory, prefix, folder", focus_dirs())
def test_focus_checks_its_input_and_mask_before_the_jobs_that_need_them(directory, prefix, folder):
    """A missing file stops the scheme at a named exit (relion.md §5: 3.1 waits for a missing input for ever)."""
    tables = description(directory, prefix)
    operators, edges = operators_of(tables, prefix), edges_of(tables, prefix)
    checks = {"CHECK_input_data_exists": ("input_data", "EXIT_input_data_not_found"),
              "CHECK_optimiser_beside_input_data": ("input_optimiser", "EXIT_no_optimiser_beside_input_data"),
              "CHECK_mask_exists": ("focus_mask", "EXIT_mask_not_found")}
    for check, (tested, stop) in checks.items():
        kind, output, first, _ = operators[check]
        assert (kind, first) == ("bool=file_exists", tested)
        if_false, if_true, variable = edges[check]
        assert variable == output and if_false == stop and operators[stop][0] == "exit"
    # the path the scheme takes when every check passes, up to Subtract
    path, node = [], start_node(tables, prefix)
    while node != "subtraction":
        path.append(node)
        if_false, if_true, _ = edges[node]
        node = if_true or if_false
    assert path == ["CHECK_input_data_exists", "ROOT_of_input_data", "NAME_optimiser",
                    "CHECK_optimiser_beside_input_data", "occupy_input", "FIND_mask", "CHECK_mask_exists",
                    "SORT_by_fraction", "READ_reference"]
    assert operators["FIND_mask"][:3] == ("string=glob", "focus_mask", "mask")  # also translates the job name
    assert strings_of(tables, prefix)["mask"] == f"{folder}/{FOCUS}/occupy_input/variable_mask.mrc"


@pytest.mark.parametrize("directory, prefix, folder", focus_dirs())
def test_focus_jobs_are_wired_to_each_other_through_variables(directory, prefix, folder):
    tables = description(directory, prefix)
    strings, operators = strings_of(tables, prefix), operators_of(tables, prefix)
    occupy = job_options(directory / "occupy_input" / "job.star")
    subtract = job_options(directory / "subtraction" / "job.star")
    focus = job_options(directory / "focus3d" / "job.star")
    focused = job_options(directory / "occupy_focused" / "job.star")
    select = job_options(directory / "select" / "job.star")
    revert = job_options(directory / "revert" / "job.star")
    assert occupy["in_part"] == "$$input_data"
    assert (subtract["fn_mask"], subtract["do_fliplabel"], subtract["do_data"]) == ("$$focus_mask", "No", "No")
    assert (subtract["do_center_mask"], subtract["new_box"]) == ("$$do_recenter", "$$new_box")
    assert focus["dont_skip_align"] == "No"  # --skip_align
    assert (focus["fn_img"], focus["fn_mask"], focus["fn_ref"]) == ("$$subtracted_particles", "$$focus_mask",
                                                                     "$$reference")
    assert (focus["nr_classes"], focus["nr_iter"], focus["tau_fudge"]) == ("$$nr_classes", "$$nr_iter", "$$tau_fudge")
    assert focused["in_part"] == "$$focus_data"
    assert (focused["param1_label"], focused["param1_value"]) == ("joint", "yes")
    assert (select["fn_data"], select["select_label"], select["select_minval"], select["select_maxval"]) == (
        "$$focus_data", "rlnClassNumber", "$$chosen_class", "$$chosen_class")
    assert (revert["do_fliplabel"], revert["fn_fliplabel"]) == ("Yes", "$$selected_particles")
    # each working variable is made by an operator from the output of the job before
    made_from = {output: strings.get(first, first) for kind, output, first, _ in operators.values()
                 if kind == "string=glob"}
    base = f"{folder}/{FOCUS}"
    assert made_from["subtracted_particles"] == f"{base}/subtraction/particles_subtracted.star"
    assert made_from["focus_iterations"] == f"{base}/focus3d/run_it*_data.star"
    assert made_from["selected_particles"] == f"{base}/select/particles.star"
    assert operators["PICK_last_focus_iteration"][1:] == ("focus_data", "focus_iterations", "nr_focus_iterations")


@pytest.mark.parametrize("directory, prefix, folder", focus_dirs())
def test_focus_reads_labels_our_summary_writes(directory, prefix, folder, class_result):
    tables = description(directory, prefix)
    strings, operators = strings_of(tables, prefix), operators_of(tables, prefix)
    row = class_row(class_result)
    readers = {name: op for name, op in operators.items() if "read_star" in op[0] or "star_table" in op[0]}
    assert set(readers) == {"SORT_by_fraction", "READ_reference", "SORT_by_scale", "READ_best_class"}
    for name, (_, _, first, _) in readers.items():
        file, table, label = strings[first].split(",")
        job = "occupy_input" if name in ("SORT_by_fraction", "READ_reference") else "occupy_focused"
        assert file == f"{folder}/{FOCUS}/{job}/{SUMMARY_NAME}" and table == CLASSES_BLOCK
        assert label in row and label.startswith("rln")
    # the reference is our equalised map of the most populated class; the selected class the fullest focused one
    assert strings[operators["READ_reference"][2]].endswith(",rlnReferenceImage")
    assert strings[operators["SORT_by_fraction"][2]].endswith(",rlnClassDistribution")
    assert strings[operators["SORT_by_scale"][2]].endswith(",rlnAverageValue")
    assert float(dict(zip(column(tables, prefix, "floats", "FloatVariableName"),
                          column(tables, prefix, "floats", "FloatVariableValue")))["sort_rank"]) == -1  # the largest


def _translated_by_relion31(value: str, jobs: list[str], name: str) -> str:
    """What relion_scheduler 3.1.3 does to an operator's string input (scheduler.cpp Schedule::gotoNextJob).

    For each job of the Schedule in alphabetical order whose name occurs in the (translated) string, it
    replaces ``Schedules/<name>/<job>/`` by the job's directory in a new temporary variable; a second job name
    in the same string makes it stop with "trying to add a string variable with a name that already exists".
    """
    translated = None
    for number, job in enumerate(sorted(jobs), start=2):
        if job in (value if translated is None else translated):
            if translated is not None:
                raise AssertionError(f"{value!r}: relion_scheduler 3.1 fails on the second job name {job!r}")
            translated = value.replace(f"Schedules/{name}/{job}/", f"Type/job{number:03d}/")
    return value if translated is None else translated


@pytest.mark.parametrize("name", SCHEME_NAMES)
def test_relion31_scheduler_can_translate_every_operator_string(name):
    tables = description(SHIPPED / "Schedules" / name, "schedule")
    strings, jobs = strings_of(tables, "schedule"), column(tables, "schedule", "jobs", "JobName")
    for operator, (kind, output, *inputs) in operators_of(tables, "schedule").items():
        for variable in [*inputs, output]:
            if variable in strings:
                translated = _translated_by_relion31(strings[variable], jobs, name)
                assert "Schedules/" not in translated, (operator, variable, translated)
                if kind == "string=glob" and variable == inputs[0]:
                    # the result (a job's file) is this operator's output in a later run: a job name in it
                    # would make 3.1 keep the old value (it writes the result to a temporary variable)
                    assert not [job for job in jobs if job in translated], (operator, translated)


@pytest.mark.parametrize("name", SCHEME_NAMES)
def test_relion5_operators_name_jobs_only_in_their_first_input(name):
    """relion_schemer 5.0.1 translates a job name in input2 into input1 (schemer.cpp executeOperator)."""
    tables = description(SHIPPED / name, "scheme")
    strings = strings_of(tables, "scheme")
    for operator, (_, _, _, second) in operators_of(tables, "scheme").items():
        assert "Schemes/" not in strings.get(second, ""), operator


@pytest.mark.parametrize("name", SCHEME_NAMES)
def test_schedule_jobs_name_other_jobs_only_through_variables(name):
    """relion_scheduler 3.1 translates a literal job path only along schedule_pipeline.star edges (none shipped)."""
    directory = SHIPPED / "Schedules" / name
    for job in column(description(directory, "schedule"), "schedule", "jobs", "JobName"):
        for option, value in job_options(directory / job / "job.star").items():
            assert "Schedules/" not in value, (job, option, value)


def _focus_external_command(job: str) -> list[str]:
    options = job_options(SHIPPED / FOCUS / job / "job.star")
    values = {"$$mask_extend": "4", "$$mask_soft_edge": "8"}
    options = {k: values.get(v, v) for k, v in options.items()}
    return relion_command(options, "Class3D/job003/run_it025_data.star")


@pytest.mark.parametrize("job", ["occupy_input", "occupy_focused"])
def test_focus_external_jobs_give_command_lines_our_program_accepts(job):
    parsed = parse_options(_focus_external_command(job))
    assert parsed.joint is (job == "occupy_focused")
    assert parsed.ignored == ()


@pytest.mark.parametrize("job", ["occupy_input", "occupy_focused"])
def test_focus_mask_settings_reach_our_job(job):
    parsed = parse_options(_focus_external_command(job))
    assert (parsed.mask_extend, parsed.mask_soft_edge) == (4.0, 8.0)
    masks = parsed.mask_parameters().resolved(3.5)
    assert (masks.extend, masks.soft_edge) == (4.0, 8.0)


# ------------------------------------------------------------------------------------------ installing


@pytest.fixture
def fake_exe(tmp_path) -> Path:
    path = tmp_path / "bin" / "occupy_relion"
    path.parent.mkdir()
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


def test_installs_the_31_schedule_into_a_31_project(relion31_copy, fake_exe, capsys):
    assert schemes.main(["occupy_class3d", "--project", str(relion31_copy), "--exe", str(fake_exe)]) == 0
    target = relion31_copy / "Schedules" / "occupy_class3d"
    assert (target / "schedule.star").read_text() == (SHIPPED / "Schedules/occupy_class3d/schedule.star").read_text()
    assert job_options(target / "occupy" / "job.star")["fn_exe"] == str(fake_exe)
    shipped = job_options(SHIPPED / "Schedules/occupy_class3d/class3d/job.star")
    assert job_options(target / "class3d" / "job.star") == shipped
    assert not (relion31_copy / "Schemes").exists()
    assert "relion_scheduler --schedule occupy_class3d --reset" in capsys.readouterr().out


def test_installs_the_scheme_into_a_50_project(relion50_copy, fake_exe):
    assert schemes.main(["occupy_select", "--project", str(relion50_copy), "--exe", str(fake_exe)]) == 0
    target = relion50_copy / "Schemes" / "occupy_select"
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*.star")) == [
        "class3d/job.star", "occupy/job.star", "scheme.star", "select/job.star"]
    assert job_options(target / "occupy" / "job.star")["fn_exe"] == str(fake_exe)
    assert job_options(target / "select" / "job.star")["fn_data"] == "$$last_data"
    assert not list((relion50_copy / "Schemes").glob(".*"))  # no staging leftovers


@pytest.mark.parametrize("project_fixture, folder, prefix", [("relion31_copy", "Schedules", "schedule"),
                                                             ("relion50_copy", "Schemes", "scheme")])
def test_installs_occupy_focus_for_the_project_s_relion(project_fixture, folder, prefix, fake_exe, request, capsys):
    project = request.getfixturevalue(project_fixture)
    assert schemes.main(["occupy_focus", "--project", str(project), "--exe", str(fake_exe)]) == 0
    target = project / folder / "occupy_focus"
    jobs = ["focus3d", "occupy_focused", "occupy_input", "revert", "select", "subtraction"]
    expected = sorted([f"{job}/job.star" for job in jobs] + [f"{prefix}.star"]
                      + (["schedule_pipeline.star"] if prefix == "schedule" else []))
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*.star")) == expected
    for job in ("occupy_input", "occupy_focused"):
        assert job_options(target / job / "job.star")["fn_exe"] == str(fake_exe)
    assert job_options(target / "subtraction" / "job.star") == job_options(
        SHIPPED / ("Schedules/" if prefix == "schedule" else "") / "occupy_focus/subtraction/job.star")
    printed = capsys.readouterr().out
    assert "--set_var input_data --value" in printed and "--set_var particles" not in printed


def _programs_on_path(monkeypatch, tmp_path, *names):
    folder = tmp_path / "relion_bin"
    folder.mkdir()
    for name in names:
        (folder / name).write_text("#!/bin/sh\n")
        (folder / name).chmod(0o755)
    monkeypatch.setenv("PATH", str(folder))


def test_version_choice_without_pipeline_and_when_forced(tmp_path, fake_exe, capsys, monkeypatch):
    project = tmp_path / "new_project"
    project.mkdir()
    (project / "default_pipeline.star").write_text("data_pipeline_general\n\n_rlnPipeLineJobCounter 1\n")
    _programs_on_path(monkeypatch, tmp_path)
    assert schemes.main(["occupy_class3d", "--project", str(project), "--exe", str(fake_exe)]) == 0
    assert (project / "Schemes/occupy_class3d/scheme.star").is_file()
    assert "cannot tell the RELION version" in capsys.readouterr().err
    assert schemes.main(["occupy_class3d", "--project", str(project), "--exe", str(fake_exe), "--schedule"]) == 0
    assert (project / "Schedules/occupy_class3d/schedule.star").is_file()


@pytest.mark.parametrize("program, folder", [("relion_scheduler", "Schedules"), ("relion_schemer", "Schemes")])
def test_new_project_follows_the_installed_relion(program, folder, tmp_path, fake_exe, monkeypatch, capsys):
    _programs_on_path(monkeypatch, tmp_path, program)
    project = tmp_path / "new_project"
    project.mkdir()
    assert schemes.main(["occupy_select", "--project", str(project), "--exe", str(fake_exe)]) == 0
    assert (project / folder / "occupy_select").is_dir()
    assert capsys.readouterr().err == ""


def test_existing_installation_is_kept_unless_forced(relion31_copy, fake_exe, capsys):
    arguments = ["occupy_class3d", "--project", str(relion31_copy), "--exe", str(fake_exe)]
    assert schemes.main(arguments) == 0
    marker = relion31_copy / "Schedules/occupy_class3d/run.out"
    marker.write_text("earlier run\n")
    assert schemes.main(arguments) == 1
    assert "exists; use --force" in capsys.readouterr().err
    assert marker.read_text() == "earlier run\n"
    assert schemes.main(arguments + ["--force"]) == 0
    assert not marker.exists()


def test_refuses_while_the_scheme_runs(relion31_copy, fake_exe, capsys):
    (relion31_copy / ".relion_lock_schedule_occupy_class3d").mkdir()
    assert schemes.main(["occupy_class3d", "--project", str(relion31_copy), "--exe", str(fake_exe), "--force"]) == 1
    assert "is running" in capsys.readouterr().err
    assert not (relion31_copy / "Schedules/occupy_class3d").exists()


def test_install_under_another_name_renames_every_path(relion50_copy, fake_exe):
    assert schemes.main(["occupy_select", "--project", str(relion50_copy), "--exe", str(fake_exe),
                         "--as", "second_try"]) == 0
    target = relion50_copy / "Schemes" / "second_try"
    text = (target / "scheme.star").read_text()
    assert "Schemes/second_try/" in text and "occupy_select/" not in text
    assert read(target / "scheme.star")["scheme_general"]["rlnSchemeName"] == "Schemes/second_try/"


@pytest.mark.parametrize("arguments, message", [
    (["nonsense"], "unknown"),
    (["occupy_class3d", "--exe", "/does/not/exist"], "not an executable file"),
    (["occupy_class3d", "--project", "/does/not/exist"], "not a directory"),
    (["occupy_class3d", "--as", "a/b"], "letters, digits"),
])
def test_bad_requests_fail_with_one_line(arguments, message, tmp_path, fake_exe, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if "--exe" not in arguments:
        arguments = arguments + ["--exe", str(fake_exe)]
    assert schemes.main(arguments) == 1
    error = capsys.readouterr().err.strip()
    assert message in error and "\n" not in error
    assert not (tmp_path / "Schemes").exists() and not (tmp_path / "Schedules").exists()


def test_executable_with_spaces_is_refused(tmp_path, capsys):
    exe = tmp_path / "my tools" / "occupy_relion"
    exe.parent.mkdir()
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    assert schemes.main(["occupy_class3d", "--project", str(tmp_path), "--exe", str(exe)]) == 1
    assert "must not contain spaces" in capsys.readouterr().err


def test_gui_settings_file(relion31_copy, fake_exe):
    assert schemes.main(["external", "--project", str(relion31_copy), "--exe", str(fake_exe)]) == 0
    written = relion31_copy / schemes.GUI_SETTINGS_FILE
    assert read(written)["job"] == {"rlnJobType": 99, "rlnJobIsContinue": 0}  # 3.1 would warn about the label
    options = job_options(written)
    assert options["fn_exe"] == str(fake_exe)
    assert {k: v for k, v in options.items() if k != "fn_exe"} == {
        k: v for k, v in job_options(SHIPPED / "external/job.star").items() if k != "fn_exe"}
    assert schemes.main(["external", "--project", str(relion31_copy), "--exe", str(fake_exe)]) == 1  # kept
    assert schemes.main(["external", "--project", str(relion31_copy), "--exe", str(fake_exe), "--force"]) == 0


def test_gui_settings_file_for_relion5_names_the_type_label(relion50_copy, fake_exe):
    assert schemes.main(["external", "--project", str(relion50_copy), "--exe", str(fake_exe)]) == 0
    header = read(relion50_copy / schemes.GUI_SETTINGS_FILE)["job"]
    assert header["rlnJobTypeLabel"] == "relion.external"


def test_default_executable_is_an_absolute_console_script():
    found = schemes.default_executable()
    if found is None:
        pytest.skip("the occupy_relion console script is not installed in this environment")
    assert found.is_absolute() and found.name == "occupy_relion"


def test_list_names_everything_shipped(capsys):
    assert schemes.main(["--list"]) == 0
    out = capsys.readouterr().out
    for name in (*SCHEME_NAMES, "external"):
        assert name in out


def test_fill_executable_touches_only_external_jobs():
    external = (SHIPPED / "occupy_class3d/occupy/job.star").read_text()
    class3d = (SHIPPED / "occupy_class3d/class3d/job.star").read_text()
    assert "fn_exe /opt/x/occupy_relion" in schemes.fill_executable(external, "/opt/x/occupy_relion")
    assert schemes.fill_executable(class3d, "/opt/x/occupy_relion") == class3d


def test_pyproject_ships_the_schemes_and_every_subpackage():
    config = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = set(config["packages"])
    inits = (REPOSITORY / "occupy_relion").rglob("__init__.py")
    source = {".".join(p.parent.relative_to(REPOSITORY).parts) for p in inits}
    assert source <= packages, source - packages
    assert config["package-dir"]["occupy_relion.schemes"] == "schemes"
    assert "**/*.star" in config["package-data"]["occupy_relion.schemes"]
