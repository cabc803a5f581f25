"""DATAS site agent: tasking in, observations out, nothing lost in between.

Imports no Django: it talks to the portal over HTTP (API v1) only.
"""
__version__ = "0.1.0"
