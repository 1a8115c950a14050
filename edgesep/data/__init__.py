"""Data that ships with edgesep's dependencies or that edgesep makes: nothing is downloaded."""
