app_name = "digest"

urlpatterns: list = []
