"""The project's own minimal liberty file, written from published NanGate45 cell areas.

The NanGate FreePDK45 Open Cell Library publishes, for each cell, its area; the boolean function of
a NAND2 or a flip-flop is common knowledge.  The project does not copy the library: it writes a
small liberty file with just what Yosys and ABC need to map a design and count area -- cell names,
areas, pin directions, boolean functions and flip-flop groups -- plus a *unit delay model* (every
cell: 1 time unit from any input to its output, independent of load) so that ABC's delay-aware
mapping has delays to work with and its delay figures count gate levels.

The one table of areas is :data:`CELL_AREAS`; its source is /work/shared/docs/nangate45-areas.md
(NanGate FreePDK45 Open Cell Library, typical corner, 1.1 V, 25 C).  Everything else (GE, reports)
derives from it.

Run ``python -m lightnorm.synth.liberty [path]`` to write the file (default
``build/synth/nangate45_min.lib``).
"""

import os
import sys
from dataclasses import dataclass

__all__ = [
    "AREA_SOURCE", "CELL_AREAS", "DERIVED_AREAS", "ALL_AREAS", "NAND2_AREA", "Cell", "CELLS", "FLIP_FLOPS", "LIBRARY_NAME",
    "DEFAULT_PATH", "liberty_text", "gate_techmap_text", "write_liberty",
]

#: Where the numbers in :data:`CELL_AREAS` come from.
AREA_SOURCE = ("NanGate FreePDK45 Open Cell Library, typical corner (1.1 V, 25 C), published cell "
               "areas as listed in shared/docs/nangate45-areas.md")

#: Cell name -> area in um^2.  The only copy of the published numbers in the code.
CELL_AREAS = {
    "INV_X1": 0.532,
    "NAND2_X1": 0.798,
    "NOR2_X1": 0.798,
    "AND2_X1": 1.064,
    "OR2_X1": 1.064,
    "XOR2_X1": 1.596,
    "XNOR2_X1": 1.596,
    "MUX2_X1": 1.862,
    "AOI21_X1": 1.064,
    "OAI21_X1": 1.064,
    "DFF_X1": 4.522,
    "DFFR_X1": 5.320,
}

#: Cells the published table lacks but the file must contain, with a derived area.  ABC's liberty
#: reader rejects a library without a buffer cell (it fails silently: no output netlist), and a
#: ``dont_use`` buffer is rejected the same way, so the file carries a BUF_X1 whose area is taken
#: as two inverters.  The unit delay model gives ABC no reason to buffer, and the reports count any
#: BUF_X1 separately (the flow's test asserts there is none), so no reported area rests on it.
DERIVED_AREAS = {
    "BUF_X1": 2 * CELL_AREAS["INV_X1"],
}

#: One gate equivalent (GE) is the area of NAND2_X1, in um^2.
NAND2_AREA = CELL_AREAS["NAND2_X1"]

LIBRARY_NAME = "lightnorm_nangate45_min"

#: Default output path, relative to the build directory.
DEFAULT_PATH = os.path.join("synth", "nangate45_min.lib")


@dataclass(frozen=True)
class Cell:
    """One liberty cell: name, input pins, and either an output function or a flip-flop group.

    Parameters
    ----------
    name : str
        Cell name as in the NanGate library (the area comes from :data:`CELL_AREAS`).
    inputs : tuple of str
        Input pin names (NanGate pin naming: A1/A2, A/B, S, D, CK, RN).
    output : str
        Output pin name.
    function : str
        Liberty boolean function of the output (for flip-flops: the stored state ``IQ``).
    ff : dict or None
        Liberty ``ff`` group attributes for sequential cells.
    gate : tuple
        ``(yosys_cell, {yosys_pin: cell_pin})``: the one Yosys internal gate with the same
        function, used to count transistors of the mapped netlist (``stat -tech cmos``).
    """

    name: str
    inputs: tuple
    output: str
    function: str
    ff: dict = None
    gate: tuple = None

    @property
    def area(self):
        return CELL_AREAS.get(self.name, DERIVED_AREAS.get(self.name))


#: The cells, in the order they appear in the file.  Functions use NanGate's pin names.
CELLS = (
    Cell("BUF_X1", ("A",), "Z", "A", gate=("$_BUF_", {"A": "A", "Y": "Z"})),
    Cell("INV_X1", ("A",), "ZN", "!A", gate=("$_NOT_", {"A": "A", "Y": "ZN"})),
    Cell("NAND2_X1", ("A1", "A2"), "ZN", "!(A1 & A2)",
         gate=("$_NAND_", {"A": "A1", "B": "A2", "Y": "ZN"})),
    Cell("NOR2_X1", ("A1", "A2"), "ZN", "!(A1 | A2)",
         gate=("$_NOR_", {"A": "A1", "B": "A2", "Y": "ZN"})),
    Cell("AND2_X1", ("A1", "A2"), "ZN", "(A1 & A2)",
         gate=("$_AND_", {"A": "A1", "B": "A2", "Y": "ZN"})),
    Cell("OR2_X1", ("A1", "A2"), "ZN", "(A1 | A2)",
         gate=("$_OR_", {"A": "A1", "B": "A2", "Y": "ZN"})),
    Cell("XOR2_X1", ("A", "B"), "Z", "(A ^ B)", gate=("$_XOR_", {"A": "A", "B": "B", "Y": "Z"})),
    Cell("XNOR2_X1", ("A", "B"), "ZN", "!(A ^ B)",
         gate=("$_XNOR_", {"A": "A", "B": "B", "Y": "ZN"})),
    Cell("MUX2_X1", ("A", "B", "S"), "Z", "((S & B) | (A & !S))",
         gate=("$_MUX_", {"A": "A", "B": "B", "S": "S", "Y": "Z"})),
    # AOI21/OAI21: the B1/B2 pair is the AND (OR) pair, A the single input, as in NanGate.
    # Yosys: $_AOI3_ Y = !((A & B) | C), $_OAI3_ Y = !((A | B) & C).
    Cell("AOI21_X1", ("A", "B1", "B2"), "ZN", "!(A | (B1 & B2))",
         gate=("$_AOI3_", {"A": "B1", "B": "B2", "C": "A", "Y": "ZN"})),
    Cell("OAI21_X1", ("A", "B1", "B2"), "ZN", "!(A & (B1 | B2))",
         gate=("$_OAI3_", {"A": "B1", "B": "B2", "C": "A", "Y": "ZN"})),
    Cell("DFF_X1", ("D", "CK"), "Q", "IQ", {"next_state": "D", "clocked_on": "CK"},
         gate=("$_DFF_P_", {"C": "CK", "D": "D", "Q": "Q"})),
    # Asynchronous clear, active low (RN = 0 forces Q = 0).
    Cell("DFFR_X1", ("D", "CK", "RN"), "Q", "IQ",
         {"next_state": "D", "clocked_on": "CK", "clear": "!RN"},
         gate=("$_DFF_PN0_", {"C": "CK", "D": "D", "R": "RN", "Q": "Q"})),
)

#: Names of the sequential cells.
FLIP_FLOPS = tuple(c.name for c in CELLS if c.ff)

#: Cell name -> area for every cell in the file (published and derived).
ALL_AREAS = {c.name: c.area for c in CELLS}

if set(ALL_AREAS) != set(CELL_AREAS) | set(DERIVED_AREAS):
    raise AssertionError("CELLS must name exactly the cells of CELL_AREAS and DERIVED_AREAS")


def _timing_group(related_pin, *, clock=False):
    # Unit delay: a scalar table of 1.0 for rise and fall, transition 0; ABC then reports delay
    # in gate levels.  Flip-flop Q is timed from the clock edge (also one unit).
    kind = "\n        timing_type : rising_edge;" if clock else ""
    return f"""      timing() {{
        related_pin : "{related_pin}";{kind}
        cell_rise(scalar) {{ values("1.0"); }}
        cell_fall(scalar) {{ values("1.0"); }}
        rise_transition(scalar) {{ values("0.0"); }}
        fall_transition(scalar) {{ values("0.0"); }}
      }}"""


def _cell_text(cell):
    lines = [f"  cell({cell.name}) {{", f"    area : {cell.area:.3f};"]
    if cell.ff:
        lines.append("    ff(IQ, IQN) {")
        for key, value in cell.ff.items():
            lines.append(f'      {key} : "{value}";')
        lines.append("    }")
    for pin in cell.inputs:
        lines.append(f"    pin({pin}) {{")
        lines.append("      direction : input;")
        lines.append("      capacitance : 1.0;")
        if pin == "CK":
            lines.append("      clock : true;")
        lines.append("    }")
    lines.append(f"    pin({cell.output}) {{")
    lines.append("      direction : output;")
    lines.append(f'      function : "{cell.function}";')
    if cell.ff:
        lines.append(_timing_group("CK", clock=True))
    else:
        for pin in cell.inputs:
            lines.append(_timing_group(pin))
    lines.append("    }")
    lines.append("  }")
    return "\n".join(lines)


def liberty_text():
    """The liberty file as a string.

    Returns
    -------
    str
        A liberty library with the cells of :data:`CELLS`, areas from :data:`CELL_AREAS` and a
        unit delay model (scalar tables).
    """
    header = f"""/* Minimal liberty file written by lightnorm.synth.liberty -- do not edit.
 * Areas: {AREA_SOURCE}.
 * Functions and pins follow the NanGate cell naming; delays are a unit model (1 per cell), not
 * characterized timing.  For area estimates and gate-level depth only. */
library({LIBRARY_NAME}) {{
  delay_model : table_lookup;
  time_unit : "1ns";
  voltage_unit : "1V";
  current_unit : "1mA";
  capacitive_load_unit(1, ff);
  pulling_resistance_unit : "1kohm";
  nom_process : 1.0;
  nom_voltage : 1.1;
  nom_temperature : 25.0;
  default_inout_pin_cap : 1.0;
  default_input_pin_cap : 1.0;
  default_output_pin_cap : 0.0;
  default_fanout_load : 1.0;
  default_max_transition : 10.0;
  input_threshold_pct_rise : 50;
  input_threshold_pct_fall : 50;
  output_threshold_pct_rise : 50;
  output_threshold_pct_fall : 50;
  slew_lower_threshold_pct_rise : 20;
  slew_lower_threshold_pct_fall : 20;
  slew_upper_threshold_pct_rise : 80;
  slew_upper_threshold_pct_fall : 80;
"""
    return header + "\n".join(_cell_text(c) for c in CELLS) + "\n}\n"


def gate_techmap_text():
    """A Yosys techmap file that replaces each liberty cell by its one Yosys internal gate.

    Every cell of :data:`CELLS` has exactly one Yosys gate with the same function, so the mapped
    netlist *is* a netlist of Yosys' CMOS gate set after this 1:1 substitution, and
    ``stat -tech cmos`` counts the transistors of the very netlist whose area is reported.
    """
    out = ["// Written by lightnorm.synth.liberty: liberty cell -> Yosys gate, 1:1."]
    for c in CELLS:
        ypins = ", ".join(f".{y}({p})" for y, p in c.gate[1].items())
        ins = ", ".join(c.inputs)
        out.append(f"module {c.name}(input {ins}, output {c.output});\n"
                   f"  \\{c.gate[0]} _TECHMAP_REPLACE_ ({ypins});\nendmodule")
    return "\n".join(out) + "\n"


def write_liberty(path):
    """Write the liberty file to ``path`` (directories are created) and return the path."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    text = liberty_text()
    # Rewrite only on change so that file timestamps stay meaningful for make.
    try:
        with open(path) as f:
            if f.read() == text:
                return path
    except FileNotFoundError:
        pass
    with open(path, "w") as f:
        f.write(text)
    return path


if __name__ == "__main__":
    build = os.environ.get("LIGHTNORM_BUILD", "build")
    print(write_liberty(sys.argv[1] if len(sys.argv) > 1 else os.path.join(build, DEFAULT_PATH)))
