"""LightNorm batch-normalization hardware generator.

Subpackages map to the repository's top-level folders: ``lightnorm.golden`` (golden/: number
formats and bit-exact NumPy models), ``lightnorm.rtl`` (rtl/: Amaranth components),
``lightnorm.gen`` (gen/: Verilog generation), ``lightnorm.verif`` (verif/: cocotb testbenches),
``lightnorm.synth`` (synth/: Yosys area flow).
"""
