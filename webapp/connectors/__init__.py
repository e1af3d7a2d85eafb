"""Historian connectors: one class per integration type behind the Connector contract."""
