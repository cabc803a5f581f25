"""The compiled part of datas-pipeline: datas_pipeline.kernels (Cython, see kernels.pyx).

Everything else is declared in pyproject.toml. ``-fno-trapping-math`` lets the compiler
vectorise the kernels' float selects; nothing in them reads floating-point exception flags.
"""
from Cython.Build import cythonize
from setuptools import Extension, setup

kernels = Extension("datas_pipeline.kernels", ["datas_pipeline/kernels.pyx"], include_dirs=["datas_pipeline"],
                    extra_compile_args=["-O3", "-fno-trapping-math"])
setup(ext_modules=cythonize([kernels], language_level=3))
