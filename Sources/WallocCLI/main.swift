import Walloc
print(Threading.count)
