from setuptools import Extension, setup

setup(ext_modules=[Extension("skd_native", ["skd_native.c"], extra_compile_args=["-Wall"])])
