"""Amazon Selling Partner API through python-amazon-sp-api, with our own LWA token handling."""

from connectors.amazon.client import AmazonConnector

__all__ = ["AmazonConnector"]
