"""WhiteNoise as an async-capable middleware.

WhiteNoise's middleware is synchronous only. Under ASGI one synchronous middleware in an
otherwise async chain makes every request hop to a thread for it, back to the event loop
for the middleware below, and to a thread again for the view; with this wrapper the whole
chain stays async and a request makes one hop, to its view. Static files themselves are
still found and served by WhiteNoise (in a thread, as file reads block).
"""

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from whitenoise.middleware import WhiteNoiseMiddleware


class AsyncWhiteNoiseMiddleware(WhiteNoiseMiddleware):
    sync_capable = True
    async_capable = True

    def __init__(self, get_response=None):
        super().__init__(get_response)
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self._async:
            return self.__acall__(request)
        return super().__call__(request)

    async def __acall__(self, request):
        if self.autorefresh:
            static_file = await sync_to_async(self.find_file, thread_sensitive=False)(request.path_info)
        else:
            static_file = self.files.get(request.path_info)
        if static_file is not None:
            return await sync_to_async(self.serve, thread_sensitive=False)(static_file, request)
        return await self.get_response(request)
