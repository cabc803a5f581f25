"""The sky as seen from a site: time data, ephemeris, visibility, observable windows, airmass, horizon, filter bands.

Pure numpy (astropy only for the time-data configuration): the server's scheduler and the
site agent ask these functions the same questions and get the same answers.
"""
