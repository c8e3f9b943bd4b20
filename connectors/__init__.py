"""Shop data connectors: TikTok Shop, Amazon SP-API and Shopee, synced into the importer.

An edge like adapters/: it speaks HTTP to the platforms. kpi_engine never imports it.
"""
