"""The CDN gateway (``--cdn-cache``): files from the ThreeFold CDN registry served over HTTP."""
