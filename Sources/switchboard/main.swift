import Switchboard
print("x")
