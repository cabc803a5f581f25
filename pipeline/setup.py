"""The compiled part of datas-pipeline (Cython): datas_pipeline.kernels (the rejection of
stacking and calibration masters) and datas_pipeline.registration._resample (the warp's
1-D resampling passes).

Everything else is declared in pyproject.toml. ``-fno-trapping-math`` lets the compiler
vectorise the kernels' float selects; nothing in them reads floating-point exception flags.
"""
from Cython.Build import cythonize
from setuptools import Extension, setup

FLAGS = ["-O3", "-fno-trapping-math"]
extensions = [
    Extension("datas_pipeline.kernels", ["datas_pipeline/kernels.pyx"], include_dirs=["datas_pipeline"],
              extra_compile_args=FLAGS),
    Extension("datas_pipeline.registration._resample", ["datas_pipeline/registration/_resample.pyx"],
              extra_compile_args=FLAGS),
]
setup(ext_modules=cythonize(extensions, language_level=3))
