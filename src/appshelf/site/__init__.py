"""The HTML browse site: pages, feed and static files planned with the rest of a build."""

from appshelf.site.generator import SiteError, SiteOptions, generate_site, site_generator

__all__ = ["SiteError", "SiteOptions", "generate_site", "site_generator"]
