import CEL
public enum SwitchboardPlaceholder {}
