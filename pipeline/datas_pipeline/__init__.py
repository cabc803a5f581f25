"""DATAS image science: plain functions over numpy arrays and astropy objects.

Nothing in this package imports Django, so the site agent runs the same code as the
server's Celery workers. ``pipeline.tasks`` (the Celery tasks) is the one exception and is
never imported from here.
"""
